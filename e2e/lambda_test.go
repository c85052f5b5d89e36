package e2e

// The Lambda side of wago, tested without AWS: the real bootstrap binary
// (built with -tags lambda.norpc) runs against lambdaRuntime, a fake of the
// Lambda Runtime API, and every request reaches it as an API Gateway HTTP
// API (payload 2.0) event routed as template.yaml routes it. Rows live in
// DynamoDB Local, live state in Redis (`make services`).

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

const (
	// lambdaAdminToken satisfies the template's MinLength of 16.
	lambdaAdminToken = "lambda-e2e-admin-token"
	// lambdaRegion and lambdaAccessKey are what the bootstrap and the test
	// both use: DynamoDB Local keeps one database per key and region.
	lambdaRegion    = "us-east-1"
	lambdaAccessKey = "wagolambda"
	lambdaARN       = "arn:aws:lambda:us-east-1:123456789012:function:wago-e2e"
	// lambdaColdStartTarget is the cold start wago aims at: process start
	// to the first response, for GET /health.
	lambdaColdStartTarget = 100 * time.Millisecond
	// lambdaInvokeTimeout bounds one invocation (the template's Timeout).
	lambdaInvokeTimeout = 30 * time.Second
)

var (
	lambdaBuildOnce sync.Once
	lambdaBinPath   string
	lambdaBuildErr  error
)

// lambdaBootstrap builds the Lambda binary once, for the host, as the
// Makefile's build-<Function> targets do for arm64. It lives beside wagoBin,
// in the directory TestMain removes.
func lambdaBootstrap(tb testing.TB) string {
	tb.Helper()
	lambdaBuildOnce.Do(func() {
		lambdaBinPath = filepath.Join(filepath.Dir(wagoBin), "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", lambdaBinPath, "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			lambdaBuildErr = fmt.Errorf("building bootstrap: %v\n%s", err, out)
		}
	})
	if lambdaBuildErr != nil {
		tb.Fatal(lambdaBuildErr)
	}
	return lambdaBinPath
}

// lambdaEnv is what a function instance is configured with.
type lambdaEnv struct {
	redisURL, dynamoEndpoint, table string
}

// newLambdaEnv returns the services of `make services` and a fresh table
// in DynamoDB Local, created as template.yaml creates it (the functions run
// with WAGO_DYNAMODB_CREATE_TABLE=false) and dropped after the test. Without
// WAGO_TEST_REDIS_URL and WAGO_TEST_DYNAMODB_ENDPOINT it skips, or fails in
// CI.
func newLambdaEnv(tb testing.TB) lambdaEnv {
	tb.Helper()
	e := lambdaEnv{redisURL: os.Getenv("WAGO_TEST_REDIS_URL"), dynamoEndpoint: os.Getenv("WAGO_TEST_DYNAMODB_ENDPOINT")}
	if e.redisURL == "" || e.dynamoEndpoint == "" {
		const msg = "WAGO_TEST_REDIS_URL and WAGO_TEST_DYNAMODB_ENDPOINT are not set: run `make services` and export .services/env"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	e.table = "wago-lambda-" + lambdaRandHex(6)
	db := dynamodb.New(dynamodb.Options{
		Region:       lambdaRegion,
		BaseEndpoint: aws.String(e.dynamoEndpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(lambdaAccessKey, lambdaAccessKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(e.table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	if err != nil {
		tb.Fatalf("create table %s in DynamoDB Local: %v", e.table, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(e.table)})
	})
	return e
}

func lambdaRandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// lambdaRuntime is a fake of the Lambda Runtime API (2018-06-01) for one
// function instance: invocations wait in a queue until the process asks for
// the next one, and its answers come back to the invoker.
type lambdaRuntime struct {
	srv     *httptest.Server
	queue   chan *lambdaInvocation
	closing chan struct{}
	close   func()

	mu      sync.Mutex // guards pending, nexts, initErr
	pending map[string]*lambdaInvocation
	nexts   int
	initErr []byte

	initFailed     chan struct{} // closed by POST /runtime/init/error
	initFailedOnce sync.Once
}

// lambdaInvocation is one queued event and, once answered, its result.
type lambdaInvocation struct {
	id       string
	event    []byte
	deadline time.Time
	result   chan lambdaResult
}

// lambdaResult is the function's answer: a response payload, or an error
// (errorType set) posted to .../error.
type lambdaResult struct {
	payload   []byte
	errorType string
}

// newLambdaRuntime starts the fake Runtime API; it stops after the test.
func newLambdaRuntime(tb testing.TB) *lambdaRuntime {
	rt := &lambdaRuntime{
		queue:      make(chan *lambdaInvocation, 64),
		closing:    make(chan struct{}),
		pending:    map[string]*lambdaInvocation{},
		initFailed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", rt.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", rt.answer(false))
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", rt.answer(true))
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", rt.initError)
	rt.srv = httptest.NewServer(mux)
	var once sync.Once
	rt.close = func() {
		once.Do(func() {
			close(rt.closing) // releases a pending next
			rt.srv.Close()
		})
	}
	tb.Cleanup(rt.close)
	return rt
}

// addr is the AWS_LAMBDA_RUNTIME_API value: host:port, no scheme.
func (rt *lambdaRuntime) addr() string { return strings.TrimPrefix(rt.srv.URL, "http://") }

// enqueue queues an event; the next GET .../next takes it.
func (rt *lambdaRuntime) enqueue(event []byte) *lambdaInvocation {
	inv := &lambdaInvocation{
		id:       lambdaRequestID(),
		event:    event,
		deadline: time.Now().Add(lambdaInvokeTimeout),
		result:   make(chan lambdaResult, 1),
	}
	rt.queue <- inv
	return inv
}

func (rt *lambdaRuntime) nextCalls() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.nexts
}

// next serves GET /runtime/invocation/next: it blocks until an invocation
// is queued, then answers its event with the invocation's headers.
func (rt *lambdaRuntime) next(w http.ResponseWriter, r *http.Request) {
	rt.mu.Lock()
	rt.nexts++
	rt.mu.Unlock()
	var inv *lambdaInvocation
	select {
	case inv = <-rt.queue:
	case <-r.Context().Done():
		return
	case <-rt.closing:
		http.Error(w, "runtime shutting down", http.StatusInternalServerError)
		return
	}
	rt.mu.Lock()
	rt.pending[inv.id] = inv
	rt.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", lambdaARN)
	h.Set("Lambda-Runtime-Trace-Id", fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), lambdaRandHex(12), lambdaRandHex(8)))
	w.WriteHeader(http.StatusOK)
	w.Write(inv.event)
}

// answer serves POST /runtime/invocation/{id}/response and .../error. An
// unknown or already answered id is a 400, as on AWS.
func (rt *lambdaRuntime) answer(failed bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		res := lambdaResult{payload: body}
		if failed {
			var e struct{ ErrorType string }
			json.Unmarshal(body, &e)
			res.errorType = cmp.Or(r.Header.Get("Lambda-Runtime-Function-Error-Type"), e.ErrorType, "Unhandled")
		}
		// aws-lambda-go streams the response and reports a failure while
		// reading it in trailers.
		if t := r.Trailer.Get("Lambda-Runtime-Function-Error-Type"); t != "" {
			res.errorType = t
			if b, err := base64.StdEncoding.DecodeString(r.Trailer.Get("Lambda-Runtime-Function-Error-Body")); err == nil {
				res.payload = b
			}
		}
		id := r.PathValue("id")
		rt.mu.Lock()
		inv := rt.pending[id]
		delete(rt.pending, id)
		rt.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if inv == nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}`)
			return
		}
		inv.result <- res
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"OK"}`)
	}
}

// initError serves POST /runtime/init/error.
func (rt *lambdaRuntime) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rt.mu.Lock()
	rt.initErr = body
	rt.mu.Unlock()
	rt.initFailedOnce.Do(func() { close(rt.initFailed) })
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, `{"status":"OK"}`)
}

func lambdaRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// lambdaFn is one function instance: a bootstrap process and its runtime.
type lambdaFn struct {
	t      testing.TB
	p      *proc
	rt     *lambdaRuntime
	listen string // the WAGO_LISTEN it was given: nothing may listen there
	routes []samRoute
}

// startLambda starts the bootstrap as Lambda starts a provided.al2023
// function: no arguments, the Lambda environment, AWS_LAMBDA_RUNTIME_API.
// extra (KEY=VALUE) overrides. It does not wait: the first invocation does.
func startLambda(tb testing.TB, rt *lambdaRuntime, e lambdaEnv, extra ...string) *lambdaFn {
	tb.Helper()
	bin := lambdaBootstrap(tb)
	fn := &lambdaFn{t: tb, rt: rt, listen: freeAddr(tb), routes: readSAMTemplate(tb).routes()}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"TZ=:UTC",
		"LANG=en_US.UTF-8",
		"_HANDLER=bootstrap",
		"LAMBDA_TASK_ROOT=" + filepath.Dir(bin),
		"AWS_LAMBDA_RUNTIME_API=" + rt.addr(),
		"AWS_LAMBDA_FUNCTION_NAME=wago-e2e",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/wago-e2e",
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/01/[$LATEST]" + lambdaRandHex(16),
		"AWS_REGION=" + lambdaRegion,
		"AWS_DEFAULT_REGION=" + lambdaRegion,
		"AWS_ACCESS_KEY_ID=" + lambdaAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + lambdaAccessKey,
		"WAGO_REDIS_URL=" + e.redisURL,
		"WAGO_DYNAMODB_ENDPOINT=" + e.dynamoEndpoint,
		"WAGO_DYNAMODB_TABLE=" + e.table,
		"WAGO_DYNAMODB_CREATE_TABLE=false",
		"WAGO_ADMIN_TOKEN=" + lambdaAdminToken,
		"WAGO_LISTEN=" + fn.listen,
		"WAGO_LOG_LEVEL=debug",
	}, extra...)
	fn.p = &proc{t: tb, cmd: cmd, logBuf: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = fn.p.logBuf, fn.p.logBuf
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { fn.p.err = cmd.Wait(); close(fn.p.done) }()
	tb.Cleanup(func() {
		fn.p.kill()
		if tb.Failed() {
			tb.Logf("bootstrap log:\n%s", fn.p.logBuf.String())
		}
	})
	return fn
}

// event builds the API Gateway HTTP API (payload 2.0) event of a request
// as API Gateway would for template.yaml's routes: target is a path with an
// optional query; header names are lower-cased, as API Gateway sends them.
func (fn *lambdaFn) event(method, target string, headers map[string]string, body string) events.APIGatewayV2HTTPRequest {
	fn.t.Helper()
	path, query, _ := strings.Cut(target, "?")
	routeKey, pathParams := fn.route(method, path)
	now := time.Now()
	reqID := lambdaRandHex(8)
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        path,
		RawQueryString: query,
		Headers: map[string]string{
			"host":              "wagoapi.execute-api.us-east-1.amazonaws.com",
			"user-agent":        "wago-e2e",
			"content-length":    strconv.Itoa(len(body)),
			"x-amzn-trace-id":   "Root=1-" + fmt.Sprintf("%08x", now.Unix()) + "-" + lambdaRandHex(12),
			"x-forwarded-for":   "203.0.113.7",
			"x-forwarded-port":  "443",
			"x-forwarded-proto": "https",
		},
		PathParameters: pathParams,
		Body:           body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "123456789012",
			Stage:        "$default",
			RequestID:    reqID,
			APIID:        "wagoapi",
			DomainName:   "wagoapi.execute-api.us-east-1.amazonaws.com",
			DomainPrefix: "wagoapi",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    method,
				Path:      path,
				Protocol:  "HTTP/1.1",
				SourceIP:  "203.0.113.7",
				UserAgent: "wago-e2e",
			},
		},
	}
	for k, v := range headers {
		k = strings.ToLower(k)
		if k == "cookie" { // API Gateway moves cookies to their own field
			ev.Cookies = append(ev.Cookies, strings.Split(v, "; ")...)
			continue
		}
		ev.Headers[k] = v
	}
	if query != "" {
		values, err := url.ParseQuery(query)
		if err != nil {
			fn.t.Fatalf("query %q: %v", query, err)
		}
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range values {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	return ev
}

// route returns the routeKey and path parameters API Gateway would give
// the request: an exact route of the template, else its greedy
// /{proxy+}. A request no route matches would not reach a function: the
// test fails.
func (fn *lambdaFn) route(method, path string) (string, map[string]string) {
	fn.t.Helper()
	for _, m := range []string{method, "ANY"} {
		for _, r := range fn.routes {
			if r.Method == m && r.Path == path {
				return r.Method + " " + r.Path, nil
			}
		}
	}
	for _, r := range fn.routes {
		if prefix, ok := strings.CutSuffix(r.Path, "{proxy+}"); ok && (r.Method == "ANY" || r.Method == method) &&
			strings.HasPrefix(path, prefix) && len(path) > len(prefix) {
			return r.Method + " " + r.Path, map[string]string{"proxy": path[len(prefix):]}
		}
	}
	fn.t.Fatalf("%s %s: no route of template.yaml matches", method, path)
	return "", nil
}

// invoke sends one request through the runtime as an API Gateway event and
// returns the function's response: status, headers, body.
func (fn *lambdaFn) invoke(method, target string, headers map[string]string, body string) (int, http.Header, []byte) {
	fn.t.Helper()
	ev, err := json.Marshal(fn.event(method, target, headers, body))
	if err != nil {
		fn.t.Fatal(err)
	}
	res := fn.wait(fn.rt.enqueue(ev))
	var out events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res, &out); err != nil {
		fn.t.Fatalf("%s %s: the response is not an API Gateway v2 response: %v\n%s", method, target, err, res)
	}
	h := http.Header{}
	for k, v := range out.Headers {
		h.Set(k, v)
	}
	for k, vs := range out.MultiValueHeaders {
		for _, v := range vs {
			if !slices.Contains(h.Values(k), v) {
				h.Add(k, v)
			}
		}
	}
	for _, c := range out.Cookies {
		h.Add("Set-Cookie", c)
	}
	b := []byte(out.Body)
	if out.IsBase64Encoded {
		if b, err = base64.StdEncoding.DecodeString(out.Body); err != nil {
			fn.t.Fatalf("%s %s: body: %v", method, target, err)
		}
	}
	if req, err := http.NewRequest(method, "http://lambda"+target, strings.NewReader(body)); err == nil {
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		if err := apiCheck.Check(req, []byte(body), out.StatusCode, h, b); err != nil {
			fn.t.Errorf("OpenAPI: %v", err)
		}
	}
	return out.StatusCode, h, b
}

// wait returns the response payload of inv; the process exiting, an init
// error, a function error or the deadline fail the test.
func (fn *lambdaFn) wait(inv *lambdaInvocation) []byte {
	fn.t.Helper()
	timer := time.NewTimer(time.Until(inv.deadline) + 5*time.Second)
	defer timer.Stop()
	select {
	case res := <-inv.result:
		if res.errorType != "" {
			fn.t.Fatalf("function error %s: %s", res.errorType, res.payload)
		}
		return res.payload
	case <-fn.p.done:
		fn.t.Fatalf("bootstrap exited: %v\n%s", fn.p.err, fn.p.logBuf.String())
	case <-fn.rt.initFailed:
		fn.rt.mu.Lock()
		defer fn.rt.mu.Unlock()
		fn.t.Fatalf("init error: %s", fn.rt.initErr)
	case <-timer.C:
		fn.t.Fatalf("no answer to invocation %s before its deadline", inv.id)
	}
	return nil
}

// call invokes and decodes the WaGo envelope, which must agree with the
// status and be JSON; headers alternate name and value.
func (fn *lambdaFn) call(method, target, body string, headers ...string) answer {
	fn.t.Helper()
	hs := map[string]string{"content-type": "application/json"}
	for i := 0; i+1 < len(headers); i += 2 {
		hs[headers[i]] = headers[i+1]
	}
	status, h, raw := fn.invoke(method, target, hs, body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		fn.t.Fatalf("%s %s: not an envelope: %d %q", method, target, status, raw)
	}
	a.Status = status
	if a.Code != a.Status || a.Success != (a.Status == 200) {
		fn.t.Fatalf("%s %s: inconsistent envelope %s (status %d)", method, target, raw, a.Status)
	}
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt != "application/json" {
		fn.t.Fatalf("%s %s: Content-Type %q", method, target, h.Get("Content-Type"))
	}
	return a
}

// ok asserts a 200 and decodes its data into v (if non-nil).
func (fn *lambdaFn) ok(a answer, v any) {
	fn.t.Helper()
	if a.Status != 200 {
		fn.t.Fatalf("got %d %q, want 200", a.Status, a.Error)
	}
	if v != nil {
		if err := json.Unmarshal(a.Data, v); err != nil {
			fn.t.Fatalf("data %s: %v", a.Data, err)
		}
	}
}

// assertNoListener checks that the process serves events only: its
// WAGO_LISTEN is closed and (on Linux) it has no listening TCP socket.
func (fn *lambdaFn) assertNoListener() {
	fn.t.Helper()
	if c, err := net.DialTimeout("tcp", fn.listen, time.Second); err == nil {
		c.Close()
		fn.t.Fatalf("something listens on WAGO_LISTEN %s: the Lambda process must not", fn.listen)
	}
	if runtime.GOOS != "linux" {
		return
	}
	listening, established, err := tcpSockets(fn.p.cmd.Process.Pid)
	if err != nil {
		fn.t.Fatalf("reading the process's sockets: %v", err)
	}
	if established == 0 {
		fn.t.Fatal("found no connected socket of the process: the /proc scan does not work")
	}
	if len(listening) > 0 {
		fn.t.Fatalf("the Lambda process listens on %v", listening)
	}
}

// tcpSockets returns the local addresses (hex, as in /proc/net/tcp) of the
// listening TCP sockets of process pid, and how many are connected.
func tcpSockets(pid int) (listening []string, established int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	for _, table := range []string{"tcp", "tcp6"} {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			switch f[3] {
			case "0A": // TCP_LISTEN
				listening = append(listening, f[1])
			case "01": // TCP_ESTABLISHED
				established++
			}
		}
	}
	return listening, established, nil
}

// TestLambdaAPI drives the bootstrap through API Gateway events only.
func TestLambdaAPI(t *testing.T) {
	e := newLambdaEnv(t)
	fn := startLambda(t, newLambdaRuntime(t), e)
	suffix := lambdaRandHex(4)
	token, name := "lambda-tok+"+suffix, "lambda-"+suffix

	t.Run("health", func(t *testing.T) {
		fn := fn.with(t)
		fn.ok(fn.call("GET", "/health", ""), nil)
		fn.assertNoListener()
	})
	t.Run("init", func(t *testing.T) {
		fn := fn.with(t)
		var got map[string]string
		fn.ok(fn.call("POST", "/session/init", `{"Name":"`+name+`","Token":"`+token+`","Os":"linux"}`, "admintoken", lambdaAdminToken), &got)
		want := map[string]string{"details": "user created successfully", "name": name, "token": token, "osName": "linux"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("init data %v, want %v", got, want)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		fn := fn.with(t)
		for _, body := range []string{
			`{"Name":"` + name + `","Token":"` + token + `","Os":"linux"}`,
			`{"Name":"other-` + suffix + `","Token":"` + token + `","Os":"linux"}`,
			`{"Name":"` + name + `","Token":"other-` + suffix + `","Os":"linux"}`,
		} {
			a := fn.call("POST", "/session/init", body, "admintoken", lambdaAdminToken)
			if a.Status != 500 || a.Error != "token or name already exists" {
				t.Fatalf("duplicate %s: %d %q", body, a.Status, a.Error)
			}
		}
	})
	t.Run("status", func(t *testing.T) {
		fn := fn.with(t)
		var st status
		fn.ok(fn.call("GET", "/session/status", "", "token", token), &st)
		if st.Connected || st.LoggedIn {
			t.Fatalf("status of a never connected session: %+v", st)
		}
	})
	t.Run("query token", func(t *testing.T) {
		fn := fn.with(t)
		var st status
		fn.ok(fn.call("GET", "/session/status?token="+url.QueryEscape(token), ""), &st)
		if st.Connected {
			t.Fatalf("status: %+v", st)
		}
		if a := fn.call("GET", "/session/status?token=nope-"+suffix, ""); a.Status != 401 {
			t.Fatalf("unknown ?token=: %d %q", a.Status, a.Error)
		}
	})
	t.Run("not found", func(t *testing.T) {
		fn := fn.with(t)
		if a := fn.call("GET", "/no/such/route", ""); a.Status != 404 || a.Error == "" {
			t.Fatalf("unknown route: %d %q", a.Status, a.Error)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		fn := fn.with(t)
		status, h, _ := fn.invoke("GET", "/session/init", map[string]string{"admintoken": lambdaAdminToken}, "")
		if a := fn.call("GET", "/session/init", "", "admintoken", lambdaAdminToken); a.Status != 405 || a.Error == "" {
			t.Fatalf("GET /session/init: %d %q", a.Status, a.Error)
		}
		if status != 405 || !strings.Contains(h.Get("Allow"), "POST") {
			t.Fatalf("GET /session/init: %d, Allow %q", status, h.Get("Allow"))
		}
	})
	t.Run("template routes", func(t *testing.T) {
		// Every route the template sends to a function is a route of the
		// API: unauthenticated, each says 401, never 404 or 405.
		fn := fn.with(t)
		for _, r := range fn.routes {
			if strings.Contains(r.Path, "{") {
				continue
			}
			if a := fn.call(r.Method, r.Path, ""); a.Status != 401 {
				t.Errorf("%s %s (%s) without credentials: %d %q, want 401", r.Method, r.Path, r.Function, a.Status, a.Error)
			}
		}
	})
	t.Run("dashboard", func(t *testing.T) {
		// The page and its script come through API Gateway whole, with
		// their security headers.
		fn := fn.with(t)
		for path, want := range map[string]string{"/dashboard": "<title>wago dashboard</title>", "/dashboard/app.js": "'use strict';"} {
			status, h, body := fn.invoke("GET", path, nil, "")
			if status != 200 || !strings.Contains(string(body), want) || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatalf("GET %s: %d, CSP %q, body %.80q", path, status, h.Get("Content-Security-Policy"), body)
			}
		}
	})
	t.Run("no listener", func(t *testing.T) {
		fn.with(t).assertNoListener()
	})
	if strings.Contains(fn.p.logBuf.String(), token) {
		t.Error("a session token appeared in the log")
	}
}

// with returns fn reporting to t (a subtest).
func (fn *lambdaFn) with(t testing.TB) *lambdaFn {
	c := *fn
	c.t = t
	return &c
}

// TestLambdaInitFailure: without its admin token the function fails at
// init, fast and clearly, before asking for an invocation.
func TestLambdaInitFailure(t *testing.T) {
	e := newLambdaEnv(t)
	rt := newLambdaRuntime(t)
	fn := startLambda(t, rt, e, "WAGO_ADMIN_TOKEN=")
	select {
	case <-fn.p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the bootstrap did not exit without WAGO_ADMIN_TOKEN")
	}
	if fn.p.err == nil {
		t.Fatal("the bootstrap exited 0 without WAGO_ADMIN_TOKEN")
	}
	if log := fn.p.logBuf.String(); !strings.Contains(log, "WAGO_ADMIN_TOKEN") {
		t.Fatalf("the log does not name WAGO_ADMIN_TOKEN:\n%s", log)
	}
	if n := rt.nextCalls(); n != 0 {
		t.Fatalf("the bootstrap asked for %d invocations before failing", n)
	}
}

// TestLambdaFunctionError: an event the adapter cannot turn into a request
// comes back through POST .../error, and the instance serves the next one.
func TestLambdaFunctionError(t *testing.T) {
	e := newLambdaEnv(t)
	rt := newLambdaRuntime(t)
	fn := startLambda(t, rt, e)
	ev := fn.event("POST", "/session/init", nil, "not base64!")
	ev.IsBase64Encoded = true
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	inv := rt.enqueue(raw)
	select {
	case res := <-inv.result:
		if res.errorType == "" {
			t.Fatalf("want a function error, got the response %s", res.payload)
		}
		t.Logf("function error %s: %s", res.errorType, res.payload)
	case <-fn.p.done:
		t.Fatalf("bootstrap exited: %v", fn.p.err)
	case <-time.After(lambdaInvokeTimeout):
		t.Fatal("no answer")
	}
	fn.ok(fn.call("GET", "/health", ""), nil)
}

// lambdaColdStart starts a fresh instance with GET /health already queued
// and returns the time from process start to the response.
func lambdaColdStart(tb testing.TB, e lambdaEnv) time.Duration {
	tb.Helper()
	rt := newLambdaRuntime(tb)
	probe := &lambdaFn{t: tb, routes: readSAMTemplate(tb).routes()}
	ev, err := json.Marshal(probe.event("GET", "/health", nil, ""))
	if err != nil {
		tb.Fatal(err)
	}
	lambdaBootstrap(tb) // built before the clock starts
	inv := rt.enqueue(ev)
	start := time.Now()
	fn := startLambda(tb, rt, e)
	payload := fn.wait(inv)
	took := time.Since(start)
	var res events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(payload, &res); err != nil || res.StatusCode != 200 {
		tb.Fatalf("GET /health: %v %s", err, payload)
	}
	fn.p.kill()
	rt.close()
	return took
}

// TestLambdaColdStart logs the cold start (median of 5) and holds it to
// lambdaColdStartTarget.
func TestLambdaColdStart(t *testing.T) {
	e := newLambdaEnv(t)
	var runs []time.Duration
	for range 5 {
		runs = append(runs, lambdaColdStart(t, e))
	}
	slices.Sort(runs)
	median := runs[len(runs)/2]
	t.Logf("Lambda cold start (process start to first response, GET /health): median %.1f ms, min %.1f ms, max %.1f ms over %d runs (target ≤ %v)",
		lambdaMillis(median), lambdaMillis(runs[0]), lambdaMillis(runs[len(runs)-1]), len(runs), lambdaColdStartTarget)
	if median > lambdaColdStartTarget {
		t.Errorf("cold start median %v is over the %v target", median.Round(time.Millisecond), lambdaColdStartTarget)
	}
}

func lambdaMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLambdaColdStart measures process start to first response
// through the runtime harness (start the bootstrap, invoke GET /health,
// kill). It reports ms/op (mean) and p50-ms; ns/op would count the set-up
// and the kill, and is suppressed.
func BenchmarkLambdaColdStart(b *testing.B) {
	e := newLambdaEnv(b)
	lambdaBootstrap(b)
	runs := make([]time.Duration, 0, b.N)
	for range b.N {
		runs = append(runs, lambdaColdStart(b, e))
	}
	var total time.Duration
	for _, d := range runs {
		total += d
	}
	slices.Sort(runs)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(lambdaMillis(total)/float64(len(runs)), "ms/op")
	b.ReportMetric(lambdaMillis(runs[len(runs)/2]), "p50-ms")
}
