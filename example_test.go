package flowhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/pipeline"
)

// A sequential pipeline: split a text, keep the long words (a filter),
// upper-case them (a map), then profile them.
func Example_sequential() {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Load(ctx, "text", "plugins/examples/textkit-go/textkit.wasm"); err != nil {
		log.Fatal(err)
	}
	res, err := pipeline.New(h).
		CallNext("text.split").
		Filter("text.is_long", pipeline.Arg("min_len", 5)).
		Map("text.upper", pipeline.Retries(2)).
		Run(ctx, pipeline.Inputs{"text": json.RawMessage(`"the quick brown fox jumps"`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res.Value))
	// Output: ["QUICK","BROWN","JUMPS"]
}

// A dataflow pipeline: the graph comes from the tasks' declared inputs
// and outputs; only what "ratio" needs runs.
func Example_dataflow() {
	ctx := context.Background()
	h, err := flowhost.New(ctx, flowhost.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer h.Close()
	if err := h.Load(ctx, "text", "plugins/examples/textkit-go/textkit.wasm"); err != nil {
		log.Fatal(err)
	}
	res, err := pipeline.FromTasks(h, "text.*").
		Want("ratio").
		Run(ctx, pipeline.Inputs{"text": json.RawMessage(`"to be or not to be"`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(res.Value))
	// Output: {"ratio":0.6666666666666666}
}
