// Command lambda measures the Lambda bootstrap (cmd/infinity-lambda): its
// size as deployed (linux/arm64, CGO off, -tags lambda.norpc, stripped) and
// its start-up time to the first handler call, for each role. Start-up is
// measured against a stand-in of the Lambda Runtime API (the HTTP protocol
// the real service and aws-lambda-go's runtime client speak): from the
// process's start to its first "next invocation" request (init done), and
// to the response of a first, empty SQS batch (the first handler call
// done). An empty batch touches no AWS service, so the figure is the
// binary's own start-up.
//
//	go run ./bench/lambda            # 20 starts per role
//	go run ./bench/lambda -runs 50
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	runs := flag.Int("runs", 20, "starts per role")
	flag.Parse()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/lambda:", err)
		os.Exit(1)
	}
}

func run(runs int) error {
	dir, err := os.MkdirTemp("", "bench-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	arm := filepath.Join(dir, "bootstrap-arm64")
	host := filepath.Join(dir, "bootstrap-"+runtime.GOARCH)
	if err := build(arm, "arm64"); err != nil {
		return err
	}
	if err := build(host, runtime.GOARCH); err != nil {
		return err
	}
	armSize, err := size(arm)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built; starting each role %d times\n", runs)

	fmt.Println("| measure | measured | goal |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| bootstrap size, linux/arm64, stripped (scripted, Bedrock, Anthropic and OpenAI models) | %.1f MB | ≤ 15 MB |\n", float64(armSize)/1e6)
	for _, role := range []string{"agent", "relay", "receiver"} {
		inits, firsts, err := startups(host, role, runs)
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		fmt.Printf("| %s: start to first handler call, p50 / p90 / max of %d (init done: p50 %s) | %s / %s / %s | ≤ 50 ms |\n",
			role, runs, ms(pct(inits, 50)), ms(pct(firsts, 50)), ms(pct(firsts, 90)), ms(slices.Max(firsts)))
	}
	fmt.Printf("\n%d cores, %s/%s; start-up measured on the host architecture.\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	return nil
}

func build(out, arch string) error {
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s", "-o", out, "./cmd/infinity-lambda")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build for %s: %w", arch, err)
	}
	return nil
}

func size(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// startups starts the binary runs times in role and returns, per start,
// the time to its first "next" request and to its first response.
func startups(bin, role string, runs int) (inits, firsts []time.Duration, err error) {
	for range runs {
		i, f, err := startOnce(bin, role)
		if err != nil {
			return nil, nil, err
		}
		inits, firsts = append(inits, i), append(firsts, f)
	}
	return inits, firsts, nil
}

// startOnce serves the Runtime API for one start of the binary.
func startOnce(bin, role string) (init, first time.Duration, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	nextc, donec := make(chan time.Time, 4), make(chan time.Time, 1)
	served := 0
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		nextc <- time.Now()
		served++
		if served > 1 {
			<-r.Context().Done() // no second invocation: the process is killed
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-1")
		w.Header().Set("Lambda-Runtime-Deadline-Ms", fmt.Sprint(time.Now().Add(30*time.Second).UnixMilli()))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
		w.Header().Set("Content-Type", "application/json")
		if role == "receiver" {
			fmt.Fprint(w, `{"version":"2.0","rawPath":"/","requestContext":{"http":{"method":"POST"}},"body":"{}"}`)
			return
		}
		fmt.Fprint(w, `{"Records":[]}`)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		donec <- time.Now()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		donec <- time.Time{}
		w.WriteHeader(http.StatusAccepted)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), roleEnv(role, ln.Addr().String())...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case t := <-nextc:
		init = t.Sub(start)
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("no first request within 10 s: %s", stderr.String())
	}
	select {
	case t := <-donec:
		if t.IsZero() {
			return 0, 0, fmt.Errorf("the first invocation failed: %s", stderr.String())
		}
		first = t.Sub(start)
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("no response within 10 s: %s", stderr.String())
	}
	return init, first, nil
}

// roleEnv is a complete configuration whose services are never reached
// (an empty batch needs none of them).
func roleEnv(role, api string) []string {
	return []string{
		"AWS_LAMBDA_RUNTIME_API=" + api,
		"AWS_LAMBDA_FUNCTION_NAME=bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_EC2_METADATA_DISABLED=true",
		"INFINITY_ROLE=" + role,
		"INFINITY_INPUT_QUEUE_URL=http://127.0.0.1:1/000000000000/in.fifo",
		"INFINITY_INPUT_QUEUE_ARN=arn:aws:sqs:us-east-1:000000000000:in.fifo",
		"INFINITY_RELAY_QUEUE_URL=http://127.0.0.1:1/000000000000/relay",
		"INFINITY_SCHEDULER_ROLE_ARN=arn:aws:iam::000000000000:role/scheduler",
		"INFINITY_STATE_TABLE=state",
		"INFINITY_RAP_KEY=000102030405060708090a0b0c0d0e0f",
		"INFINITY_DATABASE_URL=postgres://postgres@127.0.0.1:1/postgres?sslmode=disable",
	}
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
