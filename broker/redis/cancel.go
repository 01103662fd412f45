package redis

import (
	"context"

	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/runner"
)

// This file is cancellation: a run cancelled anywhere stops its calls
// running on this worker.

// cancellations interrupt the running calls of cancelled runs.
func (w *Worker) cancellations(ctx context.Context) {
	sub := w.rdb.PSubscribe(ctx, cancelPattern)
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			// The channel, which only its tenant may publish to, says whose
			// run it is; fh:t:*:cancel also matches fh:t:acme:x:cancel,
			// whose "tenant" is not a valid name and is ignored.
			tenant, ok := w.k.cancelTopicTenant(msg.Channel)
			if !ok || policy.CheckRunID(msg.Payload) != nil {
				continue
			}
			w.mu.Lock()
			if rc := w.runCtx[tenant+"/"+msg.Payload]; rc != nil {
				rc.cancel()
			}
			w.mu.Unlock()
		}
	}
}

func (w *Worker) ctxFor(tenant, run string) *runCtx {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := tenant + "/" + run
	rc := w.runCtx[key]
	if rc == nil {
		ctx, cancel := context.WithCancel(context.Background())
		rc = &runCtx{ctx: ctx, cancel: cancel, logs: runner.NewLogBudget()}
		w.runCtx[key] = rc
	}
	return rc
}

func (w *Worker) forget(tenant, run string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := tenant + "/" + run
	if rc := w.runCtx[key]; rc != nil {
		rc.cancel()
		delete(w.runCtx, key)
	}
	w.runs.remove(key)
}
