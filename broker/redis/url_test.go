package redis

import (
	"context"
	"strings"
	"testing"
)

// TestClusterURL: a cluster URL names its nodes in a list; go-redis gets
// them as one host and addr parameters.
func TestClusterURL(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"redis://h:1/0", "", ""},
		{"rediss://h:1", "", ""},
		{"redis+cluster://h:1", "redis://h:1", ""},
		{"redis+cluster://h:1,h:2,h:3", "redis://h:1?addr=h:2&addr=h:3", ""},
		{"rediss+cluster://u:p@w@h:1,h:2/0?dial_timeout=3s", "rediss://u:p@w@h:1?addr=h:2&dial_timeout=3s", ""},
		{"redis+cluster://h:1/", "redis://h:1", ""},
		{"redis+cluster://h:1/2", "", "only database 0, not 2"},
		{"redis+cluster://h:1,,h:2", "", "empty node address"},
	} {
		got, ok, err := clusterURL(tc.in)
		if ok != (tc.want != "" || tc.err != "") || got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("clusterURL(%q) = %q, %v, %v; want %q, %q", tc.in, got, ok, err, tc.want, tc.err)
		}
	}
	if _, err := Dial(context.Background(), "redis+cluster://127.0.0.1:1/5"); err == nil || !strings.Contains(err.Error(), "only database 0") {
		t.Errorf("Dial of a cluster URL naming database 5: %v", err)
	}
}
