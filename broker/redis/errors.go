package redis

import (
	"errors"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// transientReplies are the prefixes of Redis error replies that waiting
// can cure: the server is loading, busy, out of memory (noeviction), or
// a replica or cluster is in transition.
var transientReplies = []string{"LOADING", "BUSY", "TRYAGAIN", "OOM", "MASTERDOWN", "READONLY", "CLUSTERDOWN"}

// isRefusal reports a Redis error reply that waiting will not cure
// (NOPERM, WRONGTYPE, a syntax error): the caller should give up. A
// network error is not a refusal: Redis may come back.
func isRefusal(err error) bool {
	var rerr goredis.Error
	if err == nil || errors.Is(err, goredis.Nil) || !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	for _, p := range transientReplies {
		if strings.HasPrefix(msg, p) {
			return false
		}
	}
	return true
}

// isTransientReply reports a Redis error reply that waiting can cure,
// such as OOM (maxmemory reached under noeviction) or LOADING.
func isTransientReply(err error) bool {
	var rerr goredis.Error
	if err == nil || errors.Is(err, goredis.Nil) || !errors.As(err, &rerr) {
		return false
	}
	for _, p := range transientReplies {
		if strings.HasPrefix(rerr.Error(), p) {
			return true
		}
	}
	return false
}

// isNoPerm reports an ACL refusal.
func isNoPerm(err error) bool {
	var rerr goredis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOPERM")
}
