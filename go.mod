module github.com/flowhost/flowhost

go 1.26.8

// Why each direct dependency is here:
require (
	cel.dev/cel-go v0.33.2 // when, branch and concurrency-key expressions: CEL, checked at load time, with a cost limit per evaluation
	github.com/BurntSushi/toml v1.6.0 // flow.toml and worker.toml; its metadata lists unused keys, which become errors
	github.com/alecthomas/kong v1.17.0 // the command line: declarative commands and flags, generated --help
	github.com/chromedp/chromedp v0.22.1 // tests only: drives Debian's headless chromium in the dashboard's end-to-end tests
	github.com/extism/go-sdk v1.7.1 // tests and benchmarks only: the reference implementation of the Extism calling convention
	github.com/prometheus/client_golang v1.25.0 // the reference Prometheus client, for /metrics
	github.com/redis/go-redis/v9 v9.23.0 // the Redis broker: Streams, consumer groups, scripting, TLS URLs
	github.com/robfig/cron/v3 v3.0.1 // [schedule] cron expressions: the widely used parser (seconds optional, descriptors), no scheduler of its own is used
	github.com/tetratelabs/wazero v1.12.0 // the WebAssembly runtime: pure Go, no cgo, a compilation cache
	github.com/vbauerster/mpb/v8 v8.16.2 // live progress bars of map and filter steps on a terminal
	golang.org/x/net v0.59.0 // httpguts: the HTTP token and header-field rules net/http itself uses, for a guest's http_request
	golang.org/x/term v0.47.0 // telling a terminal from a pipe
)

require (
	cel.dev/expr v0.25.1 // indirect
	github.com/VividCortex/ewma v1.2.0 // indirect
	github.com/acarl005/stripansi v0.0.0-20180116102854-5a71ef0e047d // indirect
	github.com/antlr4-go/antlr/v4 v4.13.1 // indirect
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/clipperhouse/uax29/v2 v2.7.0 // indirect
	github.com/dylibso/observe-sdk/go v0.0.0-20240819160327-2d926c5d788a // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/gobwas/glob v0.2.3 // indirect
	github.com/ianlancetaylor/demangle v0.0.0-20240805132620-81f5be970eca // indirect
	github.com/mattn/go-runewidth v0.0.30 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.3 // indirect
	github.com/prometheus/common v0.72.0 // indirect
	github.com/prometheus/procfs v0.22.0 // indirect
	github.com/tetratelabs/wabin v0.0.0-20230304001439-f6f874872834 // indirect
	github.com/vbauerster/cupwriter v0.0.5 // indirect
	go.opentelemetry.io/proto/otlp v1.3.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/exp v0.0.0-20240823005443-9b4947da3948 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20240826202546-f6391c0de4c7 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20240826202546-f6391c0de4c7 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
