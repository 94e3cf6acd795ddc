module nsqrs.local/bench-go-nsq

go 1.21

require (
	github.com/nsqio/go-nsq v1.1.0
	github.com/nsqio/nsq v1.3.0
)

require github.com/golang/snappy v0.0.4 // indirect
