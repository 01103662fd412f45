// Package server is flowhost's HTTP API and web dashboard over the Redis
// the workers share (docs/api.md, docs/dashboard.md): runs listed, shown,
// followed live, cancelled and re-run; tenants and their queues. It needs
// nothing but that Redis. With Tokens, every request is bound to the
// tenant of its token, and sees and acts on that tenant's runs only.
package server

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flowhost/flowhost/broker/redis"
	"github.com/flowhost/flowhost/host"
	"github.com/flowhost/flowhost/policy"
	"github.com/flowhost/flowhost/track"
)

// Source is where a server reads runs and acts on them: a broker's
// Redis (*redis.Client, with credentials that read every tenant's keys:
// an operator's or the workers'), or this process's runs (Local).
type Source interface {
	ListRuns(ctx context.Context, tenant string, q redis.RunQuery) (*redis.RunPage, error)
	Run(ctx context.Context, tenant, id string) (*redis.Status, error)
	Status(ctx context.Context, tenant, id string) (*redis.Status, error)
	Events(ctx context.Context, tenant, id string, fn func(redis.Event) error) error
	Cancel(ctx context.Context, tenant, id string) (bool, error)
	Rerun(ctx context.Context, tenant, id string, from int) (string, error)
	Tenants(ctx context.Context) ([]string, error)
	Queue(ctx context.Context, tenant string) (redis.QueueStats, error)
	Workers(ctx context.Context) ([]redis.WorkerInfo, error)
	Logs(ctx context.Context, tenant, id string) ([]host.LogLine, error)
	Batches(ctx context.Context, tenant, id string, step int) ([]redis.BatchTime, error)
}

var _ Source = (*redis.Client)(nil)

// Config configures a Server.
type Config struct {
	// Source holds the runs.
	Source Source
	// Tokens, when set, are required: each request acts as its token's
	// tenant. nil: no tokens, every tenant (the command line then
	// listens on loopback only).
	Tokens *Tokens
	// Logger receives request failures; nil discards them.
	Logger *slog.Logger
	// Submit, when set, checks and submits a flow sent to POST
	// /api/v1/runs as tenant, and returns the new run's id; an error of
	// the flow's is Invalid. nil: the server takes no runs.
	Submit func(ctx context.Context, tenant string, req *SubmitRequest) (string, error)
}

// SubmitRequest is the body of POST /api/v1/runs: a flow file's text,
// the bytes of its plugins' modules by alias (base64 in JSON), and inputs
// that override its own.
type SubmitRequest struct {
	Flow    string                     `json:"flow"`
	Name    string                     `json:"name,omitempty"` // names the flow in errors (default flow.toml)
	Modules map[string][]byte          `json:"modules"`
	Inputs  map[string]json.RawMessage `json:"inputs,omitempty"`
}

// maxSubmission bounds a POST /api/v1/runs body: a module is at most
// 256 MiB on disk, but a flow sent whole is far less in practice.
const maxSubmission = 96 << 20

// Invalid marks err as the request's fault: the API answers 400 with it.
func Invalid(err error) error { return &httpError{http.StatusBadRequest, err.Error()} }

// Server serves the API and the dashboard.
type Server struct {
	cfg Config
	mux *http.ServeMux
}

//go:embed ui
var ui embed.FS

// New makes a server.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	for _, rt := range s.routes() {
		s.mux.HandleFunc(rt.method+" "+rt.path, rt.h)
	}
	s.mux.HandleFunc("/api/", s.api(func(http.ResponseWriter, *http.Request) (any, error) {
		return nil, &httpError{http.StatusNotFound, "no such API endpoint (docs/api.md lists them)"}
	}))
	static, _ := fs.Sub(ui, "ui")
	files := http.FileServerFS(static)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "the dashboard's pages are read with GET", http.StatusMethodNotAllowed)
			return
		}
		if name := strings.TrimPrefix(r.URL.Path, "/"); name != "" && !fs.ValidPath(name) {
			http.NotFound(w, r) // the file server would call it its own error (500)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
	return s
}

// route is an endpoint of the API; docs/api.md and openapi.json
// describe each (a test holds them to this list).
type route struct {
	method, path string
	h            http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/api/v1/runs", s.api(s.listRuns)},
		{"POST", "/api/v1/runs", s.api(s.submit)},
		{"GET", "/api/v1/runs/{id}", s.api(s.getRun)},
		{"GET", "/api/v1/runs/{id}/events", s.events},
		{"GET", "/api/v1/runs/{id}/logs", s.api(s.logs)},
		{"GET", "/api/v1/runs/{id}/steps/{step}/batches", s.api(s.batches)},
		{"POST", "/api/v1/runs/{id}/cancel", s.api(s.cancel)},
		{"POST", "/api/v1/runs/{id}/rerun", s.api(s.rerun)},
		{"GET", "/api/v1/tenants", s.api(s.tenants)},
		{"GET", "/api/v1/workers", s.api(s.workers)},
		{"GET", "/api/v1/session", s.api(s.session)},
		{"POST", "/api/v1/session", s.api(s.signIn)},
		{"DELETE", "/api/v1/session", s.api(s.signOut)},
		{"GET", "/api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(OpenAPI)
		}},
	}
}

// OpenAPI is the API's OpenAPI 3 description, served at
// /api/v1/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// ServeHTTP implements http.Handler. A panic in a handler fails that
// request alone, as a 500.
//
// Without tokens, a request must name the server by a loopback name
// (localhost, 127.0.0.1, [::1]) in its Host: a web page elsewhere that
// rebinds its own name to 127.0.0.1 (DNS rebinding) could otherwise read
// and cancel every run from the user's own browser.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			s.cfg.Logger.Error("request panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
		}
	}()
	if s.cfg.Tokens == nil && !loopbackHost(r.Host) {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": fmt.Sprintf("Host %.100q: without tokens the server answers to a loopback name only (localhost, 127.0.0.1, [::1])", r.Host)})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost, or a loopback address, with any port.
func loopbackHost(hostport string) bool {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// httpError is an API error with its status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// api adapts a handler that returns a value (written as JSON) or an
// error (written as {"error": …} with its status).
func (s *Server) api(h func(http.ResponseWriter, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		v, err := h(w, r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, redis.ErrNoRun):
		he = &httpError{http.StatusNotFound, err.Error()}
	case errors.Is(err, policy.ErrBadTenant), errors.Is(err, policy.ErrBadRunID):
		he = &httpError{http.StatusBadRequest, err.Error()}
	default:
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{http.StatusInternalServerError, "the broker could not answer: " + err.Error()}
	}
	writeJSON(w, he.status, map[string]string{"error": he.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// cookieName holds a browser session's token.
const cookieName = "flowhost_token"

// principal is the tenant the request acts as: its token's, or
// AllTenants without tokens.
func (s *Server) principal(r *http.Request) (string, error) {
	if s.cfg.Tokens == nil {
		return AllTenants, nil
	}
	token := ""
	if h := r.Header.Get("Authorization"); len(h) > 7 && h[:7] == "Bearer " {
		token = h[7:]
	} else if c, err := r.Cookie(cookieName); err == nil {
		token = c.Value
		// A request that changes something, authenticated by a cookie,
		// must show it comes from the dashboard's own script: another
		// site's form cannot set this header.
		if r.Method != http.MethodGet && r.Header.Get("X-Flowhost") != "1" {
			return "", &httpError{http.StatusForbidden, "a request that changes something needs the X-Flowhost: 1 header"}
		}
	}
	t, err := s.cfg.Tokens.Tenant(token)
	if err != nil {
		return "", &httpError{http.StatusUnauthorized, err.Error()}
	}
	return t, nil
}

// tenant is the tenant the request is about: ?tenant= (default
// "default"), which a tenant's token may only set to its own.
func (s *Server) tenant(r *http.Request) (string, error) {
	p, err := s.principal(r)
	if err != nil {
		return "", err
	}
	t := r.URL.Query().Get("tenant")
	switch {
	case t == "" && p != AllTenants:
		t = p
	case t == "":
		t = policy.DefaultTenant
	case p != AllTenants && t != p:
		return "", &httpError{http.StatusForbidden, fmt.Sprintf("this token is tenant %s's: it cannot see tenant %s's runs", p, t)}
	}
	if err := policy.CheckTenant(t); err != nil {
		return "", badRequest("tenant: %v", err)
	}
	return t, nil
}

func runID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if err := policy.CheckRunID(id); err != nil {
		return "", badRequest("run id: %v", err)
	}
	return id, nil
}

func (s *Server) listRuns(_ http.ResponseWriter, r *http.Request) (any, error) {
	tenant, err := s.tenant(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	rq := redis.RunQuery{Status: track.State(q.Get("status")), Name: q.Get("name")}
	switch rq.Status {
	case "", track.Pending, track.Running, track.Succeeded, track.Failed, track.Cancelled:
	default:
		return nil, badRequest("status %q: one of pending, running, succeeded, failed, cancelled", rq.Status)
	}
	if len(rq.Name) > 256 {
		return nil, badRequest("name: at most 256 bytes")
	}
	if v := q.Get("limit"); v != "" {
		if rq.Limit, err = strconv.Atoi(v); err != nil || rq.Limit < 1 || rq.Limit > redis.MaxPage {
			return nil, badRequest("limit %q: a number from 1 to %d", v, redis.MaxPage)
		}
	}
	if v := q.Get("before"); v != "" {
		if rq.Before, err = strconv.ParseInt(v, 10, 64); err != nil || rq.Before <= 0 {
			return nil, badRequest("before %q: a page's next (Unix milliseconds)", v)
		}
	}
	if v := q.Get("after"); v != "" {
		if rq.After, err = strconv.ParseInt(v, 10, 64); err != nil || rq.After <= 0 {
			return nil, badRequest("after %q: a time in Unix milliseconds", v)
		}
	}
	return s.cfg.Source.ListRuns(r.Context(), tenant, rq)
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) (any, error) {
	tenant, err := s.tenant(r)
	if err != nil {
		return nil, err
	}
	if s.cfg.Submit == nil {
		return nil, badRequest("this server takes no runs (an in-process run's dashboard)")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxSubmission)
	var req SubmitRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, badRequest("the body must be {\"flow\": TOML text, \"modules\": {ALIAS: base64}, \"inputs\": {NAME: JSON}}: %v", err)
	}
	if req.Flow == "" {
		return nil, badRequest("flow: the flow file's text is empty")
	}
	if req.Name == "" {
		req.Name = "flow.toml"
	}
	id, err := s.cfg.Submit(r.Context(), tenant, &req)
	if err != nil {
		return nil, err
	}
	return map[string]string{"run_id": id, "tenant": tenant}, nil
}

// runRef is the tenant and the run a request names (?tenant=, {id}).
func (s *Server) runRef(r *http.Request) (tenant, id string, err error) {
	if tenant, err = s.tenant(r); err != nil {
		return "", "", err
	}
	if id, err = runID(r); err != nil {
		return "", "", err
	}
	return tenant, id, nil
}

// knownRun is runRef of a run that exists (404 otherwise).
func (s *Server) knownRun(r *http.Request) (tenant, id string, err error) {
	if tenant, id, err = s.runRef(r); err != nil {
		return "", "", err
	}
	if _, err = s.cfg.Source.Status(r.Context(), tenant, id); err != nil {
		return "", "", err
	}
	return tenant, id, nil
}

// stepNumber reads a step number (1-based) given as what.
func stepNumber(what, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 100000 {
		return 0, badRequest("%s %q: a step number from 1", what, v)
	}
	return n, nil
}

func (s *Server) getRun(_ http.ResponseWriter, r *http.Request) (any, error) {
	tenant, id, err := s.runRef(r)
	if err != nil {
		return nil, err
	}
	return s.cfg.Source.Run(r.Context(), tenant, id)
}

func (s *Server) logs(_ http.ResponseWriter, r *http.Request) (any, error) {
	tenant, id, err := s.knownRun(r)
	if err != nil {
		return nil, err
	}
	lines, err := s.cfg.Source.Logs(r.Context(), tenant, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"lines": lines}, nil
}

func (s *Server) batches(_ http.ResponseWriter, r *http.Request) (any, error) {
	step, err := stepNumber("step", r.PathValue("step"))
	if err != nil {
		return nil, err
	}
	tenant, id, err := s.knownRun(r)
	if err != nil {
		return nil, err
	}
	bs, err := s.cfg.Source.Batches(r.Context(), tenant, id, step-1)
	if err != nil {
		return nil, err
	}
	return map[string]any{"batches": bs}, nil
}

func (s *Server) cancel(_ http.ResponseWriter, r *http.Request) (any, error) {
	tenant, id, err := s.knownRun(r)
	if err != nil {
		return nil, err
	}
	ended, err := s.cfg.Source.Cancel(r.Context(), tenant, id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_id": id, "cancelled": ended}, nil
}

func (s *Server) rerun(_ http.ResponseWriter, r *http.Request) (any, error) {
	tenant, id, err := s.runRef(r)
	if err != nil {
		return nil, err
	}
	from := 0
	if v := r.URL.Query().Get("from"); v != "" {
		if from, err = stepNumber("from", v); err != nil {
			return nil, err
		}
	}
	nid, err := s.cfg.Source.Rerun(r.Context(), tenant, id, from)
	if err != nil {
		return nil, err
	}
	return map[string]string{"run_id": nid, "rerun_of": id}, nil
}

// events streams a run's events as Server-Sent Events, from its first,
// following it live until it ends (or the client goes).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	tenant, id, err := s.knownRun(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.stream(w, r, tenant, id)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, tenant, id string) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	err := s.cfg.Source.Events(r.Context(), tenant, id, func(e redis.Event) error {
		b, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return err
		}
		flush()
		return nil
	})
	if err != nil && r.Context().Err() == nil {
		fmt.Fprintf(w, "event: error\ndata: %q\n\n", err.Error())
	}
	_, _ = io.WriteString(w, "event: end\ndata: {}\n\n")
	flush()
}

// tenantInfo is a tenant as GET /api/v1/tenants shows it: its queue, and
// what each live worker allows it.
type tenantInfo struct {
	Name string `json:"name"`
	redis.QueueStats
	Quotas map[string]redis.Quota `json:"quotas,omitempty"` // by worker
}

func (s *Server) tenants(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, err := s.principal(r)
	if err != nil {
		return nil, err
	}
	names := []string{p}
	if p == AllTenants {
		if names, err = s.cfg.Source.Tenants(r.Context()); err != nil {
			return nil, err
		}
	}
	workers, err := s.cfg.Source.Workers(r.Context())
	if err != nil {
		return nil, err
	}
	out := []tenantInfo{}
	for _, n := range names {
		q, err := s.cfg.Source.Queue(r.Context(), n)
		if err != nil {
			return nil, err
		}
		ti := tenantInfo{Name: n, QueueStats: q}
		for _, w := range workers {
			if qt, ok := w.Quotas[n]; ok {
				if ti.Quotas == nil {
					ti.Quotas = map[string]redis.Quota{}
				}
				ti.Quotas[w.Name] = qt
			}
		}
		out = append(out, ti)
	}
	return out, nil
}

// workers lists the live workers: an operator's view (they serve every
// tenant, so a tenant's token does not list them).
func (s *Server) workers(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, err := s.principal(r)
	if err != nil {
		return nil, err
	}
	if p != AllTenants {
		return nil, &httpError{http.StatusForbidden, "the workers are shared by every tenant: an operator's token lists them"}
	}
	return s.cfg.Source.Workers(r.Context())
}

func (s *Server) session(_ http.ResponseWriter, r *http.Request) (any, error) {
	p, err := s.principal(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tenant": p, "tokens": s.cfg.Tokens != nil}, nil
}

// signIn checks a token and keeps it in an HttpOnly cookie: the
// dashboard's requests, and its event streams, carry it.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request) (any, error) {
	if s.cfg.Tokens == nil {
		return nil, badRequest("this server needs no token")
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil, badRequest("the body must be {\"token\": \"…\"}")
	}
	t, err := s.cfg.Tokens.Tenant(body.Token)
	if err != nil {
		return nil, &httpError{http.StatusUnauthorized, err.Error()}
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: body.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https", Expires: time.Now().Add(12 * time.Hour)})
	return map[string]any{"tenant": t, "tokens": true}, nil
}

func (s *Server) signOut(w http.ResponseWriter, _ *http.Request) (any, error) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return map[string]any{}, nil
}
