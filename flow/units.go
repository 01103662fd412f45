package flow

import (
	"fmt"
	"time"

	"github.com/flowhost/flowhost/internal/text"
)

// duration is a TOML string such as "5s" or "1m30s".
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := text.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// size is a byte count: an integer, or a string such as "64MiB".
type size uint64

func (z *size) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		if x <= 0 {
			return fmt.Errorf("size %d must be positive", x)
		}
		*z = size(x)
		return nil
	case string:
		n, err := text.ParseSize(x)
		if err != nil {
			return err
		}
		*z = size(n)
		return nil
	}
	return fmt.Errorf("a size must be a number of bytes or a string like \"64MiB\", not %T", v)
}
