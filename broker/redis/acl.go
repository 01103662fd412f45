package redis

import (
	"strings"

	"github.com/flowhost/flowhost/policy"
)

// tenantCommands are every command a tenant's submitters need, and all a
// tenant's Redis user may run: connect, store its modules, runs and
// schedules, read their state, results and events, cancel, and wait. Nothing that lists
// or watches the keyspace (SCAN, KEYS, RANDOMKEY, DBSIZE, PUBSUB,
// MONITOR, CLIENT LIST, INFO), nothing that runs code on the server
// (EVAL, FUNCTION: a script that loops would stall every tenant), no
// consumer-group reads (only workers take work), and no registry write.
var tenantCommands = []string{
	// connection, and on a cluster its map of slots (the client reads it)
	"ping", "hello", "auth", "select", "quit", "reset", "echo", "cluster|slots",
	"client|setname", "client|getname", "client|id",
	// transactions (submit, cancel)
	"multi", "exec", "discard", "watch", "unwatch",
	// modules (written at submit, read back by call --from)
	"set", "get",
	// runs: state, steps, index, expiry
	"hset", "hget", "hgetall", "hmget", "hdel", "zadd", "zrevrange", "pexpire", "sscan",
	// work and events
	"xadd", "xread", "xrange", "xlen", "xgroup|create",
	// completion and cancellation
	"subscribe", "unsubscribe", "publish",
}

// TenantACL is the rules of a tenant's Redis user, after
// `ACL SETUSER <tenant> on >PASSWORD`: its own keys and channels
// (fh:t:<tenant>:*, and fh:t:{<tenant>}:* on a Redis Cluster) and the
// commands of tenantCommands, nothing else.
// The tenant name is checked first: a name such as "acme:x" would widen
// the pattern.
func TenantACL(tenant string) ([]string, error) {
	if err := policy.CheckTenant(tenant); err != nil {
		return nil, err
	}
	// Its keys on one server and on a cluster (keyspace: the tenant as
	// the hash tag); the same user serves both.
	rules := []string{"resetkeys", "resetchannels", "~fh:t:" + tenant + ":*", "~fh:t:{" + tenant + "}:*",
		"&fh:t:" + tenant + ":*", "&fh:t:{" + tenant + "}:*", "-@all"}
	for _, c := range tenantCommands {
		rules = append(rules, "+"+c)
	}
	return rules, nil
}

// WorkerACL is the rules of the workers' Redis user: every key and
// channel of flowhost, every command but the dangerous ones.
func WorkerACL() []string {
	return []string{"resetkeys", "resetchannels", "~fh:*", "&fh:*", "+@all", "-@dangerous"}
}

// ACLCommand renders rules as the ACL SETUSER line an operator runs.
func ACLCommand(user, password string, rules []string) string {
	return "ACL SETUSER " + user + " on >" + password + " " + strings.Join(rules, " ")
}
