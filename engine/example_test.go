package engine_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/wsload/wsload/engine"
	"github.com/wsload/wsload/server"
)

// Load-test an echo server in this process: 20 connections, 5 messages a
// second each, for 2 seconds. Run returns the finished Result (the same one
// `wsload run -o` writes as JSON).
func Example() {
	engine.QuietLogs() // nbio's start/stop lines stay off stdout

	srv, err := server.Start(server.Config{Addr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	eng, err := engine.New(engine.Config{
		URL:         srv.URL(),
		Connections: 20,
		Rate:        5,
		Duration:    2 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	res, err := eng.Run(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	m := res.Messages
	fmt.Println("established:", res.Connections.Established, "of", res.Config.Connections)
	fmt.Println("every message answered:", m.Sent > 0 && m.Received == m.Sent && m.TimedOut == 0)
	fmt.Println("closed normally:", res.CloseCodes[1000])
	fmt.Println("measured its own CPU and memory:", res.Generator.CPUUserS+res.Generator.CPUSysS > 0, res.Generator.MaxRSSBytes > 0)
	// Output:
	// established: 20 of 20
	// every message answered: true
	// closed normally: 20
	// measured its own CPU and memory: true true
}
