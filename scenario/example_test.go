package scenario_test

import (
	"fmt"
	"time"

	"github.com/wsload/wsload/scenario"
)

func ExampleParse() {
	src := `target: ws://127.0.0.1:8080/
phases: [{connections: 100, duration: 1m}]
flows:
  - name: echo
    steps:
      - repeat:
          rate: 10
          steps:
            - send: {json: {id: "${conn}-${seq}", n: "${seq}"}}
            - expect: {json: {n: {exists: true}}, timeout: 2s}
`
	plan, err := scenario.Parse("echo.yaml", []byte(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	send := plan.Flows[0].Steps[0].Repeat.Steps[0]
	msg := send.Send.Append(nil, &scenario.Vars{Conn: 7, Seq: 42, Now: time.Unix(0, 0)})
	fmt.Printf("%s at %s sends %s\n", send.Name, send.Pos, msg)
	fmt.Println(plan.Estimate().MessageRate)

	_, err = scenario.Parse("typo.yaml", []byte("target: ws://127.0.0.1:8080/\nflows: [{name: x, steps: [{expect: {timout: 2s}}]}]\n"))
	fmt.Println(err)
	// Output:
	// echo.send@9 at 9:15 sends {"id":"7-42","n":42}
	// 1000 msg/s
	// typo.yaml:2:37: unknown key "timout" in expect (hint: did you mean `timeout`?)
}
