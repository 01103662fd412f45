package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flowhost/flowhost"
	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/runner"
	"github.com/flowhost/flowhost/server"
)

type serveCmd struct {
	Broker string `required:"" env:"FLOWHOST_BROKER" placeholder:"URL" help:"The workers' broker (redis://… or rediss://), with credentials that read every tenant's keys (the workers' or an operator's)."`
	Addr   string `default:"127.0.0.1:8080" placeholder:"HOST:PORT" help:"Where to listen. Without --auth, a loopback address only."`
	Auth   string `placeholder:"tokens.toml" help:"Require a token with every request: [tokens] \"TOKEN\" = \"TENANT\" (or \"*\" for an operator); a tenant's token sees and acts on that tenant's runs only."`
}

func (c *serveCmd) Run(g *globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g.logger = g.newLogger(slog.LevelInfo)
	var tokens *server.Tokens
	if c.Auth != "" {
		var err error
		if tokens, err = server.LoadTokens(c.Auth); err != nil {
			return usageErr(fmt.Errorf("--auth: %w", err))
		}
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return usageErr(fmt.Errorf("--addr %q: %w", c.Addr, err))
	}
	if ip := net.ParseIP(host); tokens == nil && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return usageErr(fmt.Errorf("--addr %s: without --auth the server listens on a loopback address only (anyone who reaches it sees every tenant's runs)", c.Addr))
	}
	client, err := redis.Dial(ctx, c.Broker)
	if err != nil {
		return usageErr(err)
	}
	defer client.Close()
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return usageErr(fmt.Errorf("--addr: %w", err))
	}
	eng, err := g.newEngine(ctx)
	if err != nil {
		return err
	}
	defer eng.Close(context.Background())
	submit := func(ctx context.Context, tenant string, req *server.SubmitRequest) (string, error) {
		f, err := flowhost.LoadFlowSource(ctx, eng, req.Name, []byte(req.Flow), req.Modules, req.Inputs)
		if errors.Is(err, flowhost.ErrInvalid) {
			return "", server.Invalid(err)
		}
		if err != nil {
			return "", err
		}
		if f.File.Tenant != "" && f.File.Tenant != tenant {
			return "", server.Invalid(fmt.Errorf("the flow belongs to tenant %s, not %s", f.File.Tenant, tenant))
		}
		id := runner.NewRunID()
		return id, f.Submit(ctx, client, id, tenant, 24*time.Hour)
	}
	srv := &http.Server{Handler: server.New(server.Config{Source: client, Tokens: tokens, Logger: g.logger, Submit: submit}),
		ReadHeaderTimeout: 10 * time.Second}
	g.logger.Info("dashboard and API serving", "url", "http://"+ln.Addr().String()+"/", "broker", redactURL(c.Broker), "tokens", tokens != nil)
	fmt.Fprintf(g.stderr, "serving the dashboard at http://%s/ (Ctrl-C stops)\n", ln.Addr())
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Help is the serve command's detailed help.
func (c *serveCmd) Help() string {
	return `Serves the web dashboard and the JSON API (docs/api.md) over the Redis
the workers share: runs listed, shown and followed live, cancelled and
re-run; tenants and their queues.

Examples:
  flowhost serve --broker redis://localhost:6379/0
  flowhost serve --broker redis://ops:SECRET@redis:6379/0 --addr 0.0.0.0:8080 --auth tokens.toml`
}

// serveLocal serves the dashboard of this process's runs at addr, a
// loopback address (there are no tokens), until ctx ends; it returns the
// dashboard's URL.
func serveLocal(ctx context.Context, g *globals, addr string, local *server.Local) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		return "", fmt.Errorf("%s: the dashboard of an in-process run listens on a loopback address only", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: server.New(server.Config{Source: local, Logger: g.logger}), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}
