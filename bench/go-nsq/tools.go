//go:build tools

// Package tools pins nsq's bench_writer at v1.3.0, so that
// `go build github.com/nsqio/nsq/bench/bench_writer` builds it from this module.
// `go install github.com/nsqio/nsq/bench/bench_writer@v1.3.0` refuses nsq's go.mod because it
// has a replace directive; building from here has no such limit.
package tools

import _ "github.com/nsqio/nsq/bench/bench_writer"
