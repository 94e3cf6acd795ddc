//go:build tools

// Package tools pins nsqd v1.3.0 so `go install github.com/nsqio/nsq/apps/nsqd` builds it from
// this module. nsq's own go.mod replaces github.com/judwhite/go-svc, and replace directives of a
// dependency are ignored, so the same replace is repeated in go.mod here.
package tools

import _ "github.com/nsqio/nsq/apps/nsqd"
