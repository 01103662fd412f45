package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/policy"
)

// tenantsCmd manages the registry of tenants that workers read.
type tenantsCmd struct {
	Add    tenantsAddCmd    `cmd:"" help:"Register tenants: workers read their streams. Needs the workers' or an operator's credentials."`
	Remove tenantsRemoveCmd `cmd:"" help:"Unregister tenants: workers stop reading their streams (their runs and results are kept)."`
	List   tenantsListCmd   `cmd:"" help:"List the registered tenants."`
	ACL    tenantsACLCmd    `cmd:"" name:"acl" help:"Print the Redis ACL SETUSER line of a tenant's user (or, with --worker, the workers' user)."`
}

type adminBroker struct {
	Broker string `required:"" env:"FLOWHOST_BROKER" placeholder:"URL" help:"The broker: redis://[user:pass@]host:port/db, rediss:// (TLS), or redis+cluster://host:port[,host:port…] (a Redis Cluster)."`
}

type tenantsAddCmd struct {
	Names []string `arg:"" name:"TENANT" help:"Tenant names: lower-case letters, digits, '-' and '_', at most 64."`
	adminBroker
}

func checkTenants(names []string) error {
	for _, n := range names {
		if err := policy.CheckTenant(n); err != nil {
			return usageErr(err)
		}
	}
	return nil
}

// each connects to the broker and calls fn for each tenant name, checked
// first, stopping at the first error.
func (a adminBroker) each(names []string, fn func(context.Context, *redis.Client, string) error) error {
	if err := checkTenants(names); err != nil {
		return err
	}
	b := brokerFlags{Broker: a.Broker, Tenant: policy.DefaultTenant}
	ctx, client, done, err := b.connect()
	if err != nil {
		return err
	}
	defer done()
	for _, n := range names {
		if err := fn(ctx, client, n); err != nil {
			return err
		}
	}
	return nil
}

func (c *tenantsAddCmd) Run(g *globals) error {
	return c.each(c.Names, func(ctx context.Context, client *redis.Client, n string) error {
		if err := client.AddTenant(ctx, n); err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "registered %s\n", n)
		return nil
	})
}

type tenantsRemoveCmd struct {
	Names []string `arg:"" name:"TENANT" help:"Tenant names."`
	adminBroker
}

func (c *tenantsRemoveCmd) Run(g *globals) error {
	return c.each(c.Names, func(ctx context.Context, client *redis.Client, n string) error {
		ok, err := client.RemoveTenant(ctx, n)
		if err != nil {
			return err
		}
		if ok {
			fmt.Fprintf(g.stdout, "removed %s\n", n)
		} else {
			fmt.Fprintf(g.stdout, "%s was not registered\n", n)
		}
		return nil
	})
}

type tenantsListCmd struct {
	adminBroker
}

func (c *tenantsListCmd) Run(g *globals) error {
	b := brokerFlags{Broker: c.Broker, Tenant: policy.DefaultTenant}
	ctx, client, done, err := b.connect()
	if err != nil {
		return err
	}
	defer done()
	ts, err := client.Tenants(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		fmt.Fprintln(g.stdout, t)
	}
	return nil
}

type tenantsACLCmd struct {
	Name     string `arg:"" optional:"" name:"TENANT" help:"The tenant."`
	Worker   bool   `help:"Print the workers' user instead (user name \"worker\")."`
	Password string `default:"PASSWORD" help:"The password to put in the line (default: the placeholder PASSWORD)."`
}

func (c *tenantsACLCmd) Run(g *globals) error {
	if c.Worker {
		fmt.Fprintln(g.stdout, redis.ACLCommand("worker", c.Password, redis.WorkerACL()))
		return nil
	}
	if c.Name == "" {
		return usageErr(fmt.Errorf("name a tenant, or give --worker"))
	}
	rules, err := redis.TenantACL(c.Name)
	if err != nil {
		return usageErr(err)
	}
	if strings.ContainsAny(c.Password, " \t\n") {
		return usageErr(fmt.Errorf("--password: no spaces"))
	}
	fmt.Fprintln(g.stdout, redis.ACLCommand(c.Name, c.Password, rules))
	return nil
}
