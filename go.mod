module github.com/wsload/wsload

go 1.26.8

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0 // indirect
	github.com/lesismal/nbio v1.6.12 // indirect
	github.com/spf13/pflag v1.1.0 // indirect
)
