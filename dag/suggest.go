package dag

import "github.com/flowhost/flowhost/internal/text"

func suggest(word string, valid []string) string { return text.Suggest(word, valid) }
