package track

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flowhost/flowhost/policy"
)

// FailedCall is a call of a run that failed (or whose failure a map's
// skip_errors skipped), as the run records it: the exact module (by
// sha256), task, input and limits, enough to run the call again anywhere
// (`flowhost call --from`). A call is a function of these unless its
// grants let the world in, so it fails again the same way.
type FailedCall struct {
	// Step is the step's number (1-based; a dataflow node's, in plan
	// order) and Element the map or filter element's (0-based), -1 for a
	// step of one call.
	Step    int    `json:"step"`
	Element int    `json:"element"`
	Label   string `json:"label"`
	// Module is the module's alias in the flow, SHA256 its bytes' digest.
	Module string `json:"module"`
	SHA256 string `json:"sha256"`
	// Task is the task's name in the module's manifest.
	Task string `json:"task"`
	// Input is the input object exactly as the task saw it.
	Input json.RawMessage `json:"input"`
	// Limits are the call's limits and grants, resolved (the tenant's
	// maxima applied).
	Limits policy.Call `json:"limits"`
	// Attempts is how many times the call ran; Error is its last failure.
	Attempts int    `json:"attempts"`
	Error    string `json:"error"`
}

// MaxFailedCalls bounds the failed calls a run records: a map that skips
// a million failures keeps the first ones.
const MaxFailedCalls = 100

// MaxFailedInput bounds the input a record keeps; a larger one is not
// recorded (the call can still be run again from the flow).
const MaxFailedInput = 1 << 20

// Check validates a record read back from where a tenant may write (its
// Redis keys) before anything is done with it.
func (c *FailedCall) Check() error {
	switch {
	case c.Step < 1:
		return fmt.Errorf("step %d: steps are numbered from 1", c.Step)
	case c.Element < -1:
		return fmt.Errorf("element %d", c.Element)
	case len(c.SHA256) != 64:
		return errors.New("the module's sha256 is not 64 hex digits")
	case c.Task == "":
		return errors.New("no task")
	case len(c.Input) > MaxFailedInput || !json.Valid(c.Input):
		return errors.New("the input is not JSON of at most 1 MiB")
	case c.Limits.Timeout < 0 || c.Limits.Timeout > policy.MaxDuration:
		return fmt.Errorf("timeout %s is out of range", c.Limits.Timeout)
	}
	if _, err := hex.DecodeString(c.SHA256); err != nil {
		return errors.New("the module's sha256 is not 64 hex digits")
	}
	return nil
}

// Key names the record among its run's: "STEP" or "STEP:ELEMENT".
func (c *FailedCall) Key() string {
	if c.Element < 0 {
		return fmt.Sprint(c.Step)
	}
	return fmt.Sprintf("%d:%d", c.Step, c.Element)
}
