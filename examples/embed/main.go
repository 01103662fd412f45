// Command embed shows flowhost embedded in a Go program: it loads two
// example task libraries and runs a sequential and a dataflow pipeline.
//
//	go run ./examples/embed
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/pipeline"
)

func main() {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{Limits: pipeline.Limits{Memory: 64 << 20}})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	for alias, path := range map[string]string{
		"text":  "plugins/examples/textkit-go/textkit.wasm",
		"stats": "plugins/examples/stats-c/stats.wasm",
	} {
		if err := h.Load(ctx, alias, path); err != nil {
			log.Fatal(err)
		}
	}

	// Sequential: the squares of the even numbers, then their sum and spread.
	seq, err := pipeline.New(h).
		Filter("stats.is_even", pipeline.Param("x")).
		Map("stats.square", pipeline.MaxParallel(4)).
		Group([]string{"stats.sum", "stats.describe"}).
		Run(ctx, pipeline.Inputs{"x": json.RawMessage(`[1,2,3,4,5,6]`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sequential (run %s): %s\n", seq.RunID, seq.Value)

	// Dataflow: only the tasks the "report" output needs run.
	df, err := pipeline.FromTasks(h, "text.*").
		Want("report").
		Configure("text.profile", pipeline.Retries(2)).
		Run(ctx, pipeline.Inputs{"text": json.RawMessage(`"the quick brown fox jumps over the lazy dog"`), "title": json.RawMessage(`"pangram"`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dataflow (run %s): %s\n", df.RunID, df.Value)
}
