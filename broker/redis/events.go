package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flowhost/flowhost/track"
)

// Event is one thing that happened in a run: the same type
// (track.Event), and the same JSON, whichever driver ran it.
type Event = track.Event

// Events calls fn with each event of a run, oldest first, then follows
// new ones until the run ends or ctx is done.
func (c *Client) Events(ctx context.Context, tenant, id string, fn func(Event) error) error {
	if _, err := c.Status(ctx, tenant, id); err != nil {
		return err
	}
	last := "0"
	for {
		res, err := c.rdb.XRead(ctx, &goredis.XReadArgs{Streams: []string{c.k.eventsKey(tenant, id), last}, Count: 100, Block: time.Second}).Result()
		if errors.Is(err, goredis.Nil) {
			// Nothing new: stop if the run is over (its last event was read).
			st, err := c.Status(ctx, tenant, id)
			if err != nil {
				return err
			}
			if st.Ended() {
				return nil
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		n := 0
		for _, s := range res {
			n += len(s.Messages)
			for _, m := range s.Messages {
				last = m.ID
				var e Event
				raw, _ := m.Values["e"].(string)
				if err := json.Unmarshal([]byte(raw), &e); err != nil {
					continue
				}
				if err := fn(e); err != nil {
					return err
				}
				if e.Type == track.RunFinished {
					return nil
				}
			}
		}
		// A follower reads at most ten times a second: events that come
		// one by one (a map's progress) are read in batches, so a watched
		// run costs Redis a few commands a second, not one an event.
		if n < 100 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(followEvery):
			}
		}
	}
}

// followEvery is how long a follower of a run's events waits after a
// read that found fewer than a full batch.
const followEvery = 100 * time.Millisecond
