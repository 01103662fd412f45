package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Event types, in the order a run produces them.
const (
	EventRunStarted   = "run_started"
	EventStepStarted  = "step_started"
	EventStepRetried  = "step_retried"
	EventStepFailed   = "step_failed"
	EventStepFinished = "step_finished"
	EventRunFinished  = "run_finished"
)

// Event is one thing that happened in a run, recorded by the worker where
// it happened, when it happened. A "step" of a dataflow run is a task node.
type Event struct {
	Time    string `json:"time"`
	Type    string `json:"type"`
	RunID   string `json:"run_id"`
	Step    int    `json:"step,omitempty"` // 1-based
	Name    string `json:"name,omitempty"`
	Worker  string `json:"worker,omitempty"`
	Status  string `json:"status,omitempty"`
	Error   string `json:"error,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Element *int   `json:"element,omitempty"`
	Total   *int   `json:"total,omitempty"`
}

func (e Event) encode() string {
	if e.Time == "" {
		e.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(e)
	return string(b)
}

// Events calls fn with each event of a run, oldest first, then follows
// new ones until the run ends or ctx is done.
func (c *Client) Events(ctx context.Context, tenant, id string, fn func(Event) error) error {
	if _, err := c.Status(ctx, tenant, id); err != nil {
		return err
	}
	last := "0"
	for {
		res, err := c.rdb.XRead(ctx, &goredis.XReadArgs{Streams: []string{eventsKey(tenant, id), last}, Count: 100, Block: time.Second}).Result()
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
		for _, s := range res {
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
				if e.Type == EventRunFinished {
					return nil
				}
			}
		}
	}
}
