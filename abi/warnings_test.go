package abi

import (
	"slices"
	"testing"
)

func TestWarnings(t *testing.T) {
	for _, c := range []struct {
		manifest string
		want     []string
	}{
		{`{"abi":1,"name":"m","tasks":[{"name":"t","inputs":["x"],"outputs":["y"]}]}`, nil},
		{`{"abi":1,"name":"m","versoin":"1","tasks":[{"name":"t","input":["x"],"outputs":["y"]}]}`, []string{
			`the manifest: unknown key "versoin" is ignored; did you mean "version"?`,
			`task "t": unknown key "input" is ignored; did you mean "inputs"?`}},
		{`{"abi":1,"name":"m","tasks":[{"name":"t","inputs":[{"name":"x","defualt":1}],"outputs":[{"name":"y","tpye":"string"}]}]}`, []string{
			`task "t" input "x": unknown key "defualt" is ignored; did you mean "default"?`,
			`task "t" output "y": unknown key "tpye" is ignored; did you mean "type"?`}},
		{`{"abi":1,"name":"m","tasks":[{"name":"t","inputs":["x"],"outputs":["x"]}]}`, []string{
			`task "t": output "x" has the name of one of its inputs: in a dataflow, the task would be bound to its own output`}},
		{`{"abi":1,"name":"m","tasks":[{"name":"t","inputs":[{"name":"x","type":"text"}],"outputs":["y"]}]}`, []string{
			`task "t" input "x": type "text" is not one flowhost checks (string, number, integer, boolean, array, object, null): not checked`}},
	} {
		m, err := ParseManifest([]byte(c.manifest))
		if err != nil {
			t.Fatal(err)
		}
		if got := Warnings([]byte(c.manifest), m); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.manifest, got, c.want)
		}
	}
}
