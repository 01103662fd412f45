package dag

import "github.com/flowhost/flowhost/flow"

func suggest(word string, valid []string) string { return flow.Suggest(word, valid) }
