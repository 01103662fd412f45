package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// errPrivate is returned by the dialer for an address the grants keep the
// guest away from.
var errPrivate = errors.New("the address is loopback, private or link-local, and the task is not granted private addresses")

func blockedIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast()
}

// httpClient is the client of one set of grants: every connection's
// resolved address is checked at dial time, and every redirect's host
// against the allow-list.
func httpClient(g *Grants) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || (!g.Private && blockedIP(ip)) {
			return fmt.Errorf("connect to %s: %w", address, errPrivate)
		}
		return nil
	}}
	return &http.Client{
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConns: 16, IdleConnTimeout: 30 * time.Second},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if !allowsHost(g, req.URL.Hostname()) {
				return &hostPanic{kind: KindDenied, msg: fmt.Sprintf("HTTP redirect to %s refused: host %q is not granted", req.URL.Redacted(), req.URL.Hostname())}
			}
			return nil
		},
	}
}

// guestRequest is what a guest asks http_request for.
type guestRequest struct {
	URL     string            `json:"url"`
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
}

// checkHTTPRequest reads a guest's request (untrusted bytes) and checks
// it against the call's grants: an http or https URL with a host the
// grants allow, a method that is an HTTP token, headers that are valid
// field names and values. It returns the failure's kind with the error.
func checkHTTPRequest(raw []byte, g *Grants, module, task string) (*guestRequest, *url.URL, Kind, error) {
	var req guestRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, nil, KindTrap, fmt.Errorf("http_request: the request is not a JSON object {url, method, headers}: %v", err)
	}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, nil, KindTrap, fmt.Errorf("http_request: %.200q is not an http or https URL", req.URL)
	}
	if g == nil || len(g.HTTP) == 0 {
		return nil, nil, KindDenied, fmt.Errorf("HTTP request to %s refused: task %s.%s is granted no HTTP hosts (grant %.100s in the flow's [grants] http, or with call --grant http=%.100s)", u.Redacted(), module, task, u.Hostname(), u.Hostname())
	}
	if !allowsHost(g, u.Hostname()) {
		return nil, nil, KindDenied, fmt.Errorf("HTTP request to %s refused: host %.100q is not granted (granted: %s)", u.Redacted(), u.Hostname(), strings.Join(g.HTTP, ", "))
	}
	if req.Method != "" && !httpguts.ValidHeaderFieldName(req.Method) {
		return nil, nil, KindTrap, fmt.Errorf("http_request: method %.40q is not an HTTP token", req.Method)
	}
	for name, v := range req.Headers {
		if !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(v) {
			return nil, nil, KindTrap, fmt.Errorf("http_request: header %.40q: not a valid header field", name)
		}
	}
	return &req, u, 0, nil
}

// httpRequest implements the Extism http_request import: the request is
// a JSON object {url, method?, headers?}; the response body goes into a
// new block.
func (k *kernel) httpRequest(reqOff, bodyOff uint64) uint64 {
	req, u, kind, err := checkHTTPRequest(k.blockBytes("http_request", reqOff), k.grants, k.module, k.task)
	if err != nil {
		fail(kind, "%s", err)
	}
	g := k.grants
	if k.httpClient == nil {
		k.httpClient = httpClient(g)
	}
	ctx := k.callCtx
	if k.meter.deadline != 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, k.meter.deadline))
		defer cancel()
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if bodyOff != 0 {
		// A copy: the transport may read a body after Do returns, and the
		// block is the kernel's memory, which the next call reuses.
		body = bytes.NewReader(bytes.Clone(k.blockBytes("http_request", bodyOff)))
	}
	hreq, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), u.String(), body)
	if err != nil {
		fail(KindTrap, "http_request: %v", err)
	}
	for name, v := range req.Headers {
		hreq.Header.Set(name, v)
	}
	resp, err := k.httpClient.Do(hreq)
	if err != nil {
		var hp *hostPanic
		switch {
		case errors.As(err, &hp):
			panic(hp)
		case errors.Is(err, errPrivate):
			fail(KindDenied, "HTTP request to %s refused: %v", u.Redacted(), errPrivate)
		case ctx.Err() != nil:
			fail(KindTimeout, "did not finish within %s (in an HTTP request to %s)", k.meter.timeout, u.Redacted())
		}
		fail(KindTrap, "http_request %s: %v", u.Redacted(), err)
	}
	defer resp.Body.Close()
	limit := k.maxOutput
	if limit == 0 {
		limit = 16 << 20
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		fail(KindTrap, "http_request %s: reading the response: %v", u.Redacted(), err)
	}
	if uint64(len(data)) > limit {
		fail(KindOutputTooLarge, "the HTTP response from %s is larger than %d bytes", u.Redacted(), limit)
	}
	k.httpStatus = int32(resp.StatusCode)
	hdr := map[string]string{}
	for name := range resp.Header {
		hdr[strings.ToLower(name)] = resp.Header.Get(name)
	}
	k.httpHeaders, _ = json.Marshal(hdr)
	return k.allocCopy(data)
}
