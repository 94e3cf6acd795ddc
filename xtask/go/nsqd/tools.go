//go:build tools

// Package tools pins nsq v1.3.0 so that `go install github.com/nsqio/nsq/apps/<command>` builds
// nsqd, nsqlookupd, to_nsq, nsq_tail and nsq_to_nsq from this module, and
// `go install github.com/nsqio/nsq/bench/bench_reader` nsq's consumer benchmark. nsq's own go.mod replaces
// github.com/judwhite/go-svc, and replace directives of a dependency are ignored, so the same
// replace is repeated in go.mod here.
package tools

import (
	_ "github.com/nsqio/nsq/apps/nsq_tail"
	_ "github.com/nsqio/nsq/apps/nsq_to_nsq"
	_ "github.com/nsqio/nsq/apps/nsqd"
	_ "github.com/nsqio/nsq/apps/nsqlookupd"
	_ "github.com/nsqio/nsq/apps/to_nsq"
	_ "github.com/nsqio/nsq/bench/bench_reader"
)
