//go:build !lambda.norpc

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain runs main itself when WAGO_CONFIG_TEST_MAIN names a role, so
// that TestMainStopsOnBadConfig can watch the real start-up in a process.
func TestMain(m *testing.M) {
	if role := os.Getenv("WAGO_CONFIG_TEST_MAIN"); role != "" {
		os.Args = []string{"wago", role}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// lookupIn returns a lookup function over env.
func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

// readmeConfigTable returns the rows of the README's "## Configuration"
// table: variable name -> default column.
func readmeConfigTable(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(WAGO_[A-Z0-9_]+)` \\|.*\\|([^|]*)\\|$")
	rows := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Configuration"
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("README: %s appears twice in the Configuration table", m[1])
			}
			rows[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("README.md has no Configuration table")
	}
	return rows
}

// TestConfigMatchesREADME: the variables the loader reads (recorded from
// its lookups, not copied) are exactly the README's Configuration table,
// and a default written as one value in the table is the loader's default.
func TestConfigMatchesREADME(t *testing.T) {
	var read []string
	_, err := readConfig(func(name string) (string, bool) {
		read = append(read, name)
		return "", false
	})
	if err != nil {
		t.Fatalf("the empty environment is not a valid configuration: %v", err)
	}
	table := readmeConfigTable(t)
	for _, name := range read {
		if _, ok := table[name]; !ok {
			t.Errorf("the loader reads %s, which the README's Configuration table lacks", name)
		}
	}
	for name := range table {
		if !slices.Contains(read, name) {
			t.Errorf("the README's Configuration table lists %s, which the loader never reads", name)
		}
	}
	if sorted := slices.Sorted(slices.Values(read)); len(slices.Compact(sorted)) != len(read) {
		t.Errorf("the loader reads a variable twice: %v", read)
	}

	// A default column that is exactly one `value` (not one that refers to
	// another variable) must load as the default.
	single := regexp.MustCompile("^`([^`$]+)`$")
	checked := 0
	for name, def := range table {
		m := single.FindStringSubmatch(def)
		if m == nil {
			continue
		}
		got, err := readConfig(lookupIn(map[string]string{name: m[1]}))
		if err != nil {
			t.Errorf("README default of %s, %s: %v", name, m[1], err)
			continue
		}
		if got != defaultConfig() {
			t.Errorf("README default of %s is %s, but the loader's default differs:\n got %+v\nwant %+v", name, m[1], got, defaultConfig())
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d README defaults checked: has the table's format changed?", checked)
	}
}

// TestConfigValues: values in every accepted form load into the fields.
func TestConfigValues(t *testing.T) {
	c, err := readConfig(lookupIn(map[string]string{
		"WAGO_ADMIN_TOKEN":              "  admin  ",
		"WAGO_LISTEN":                   "127.0.0.1:0",
		"WAGO_DATA_DIR":                 "/var/lib/wago",
		"WAGO_WHATSMEOW_DB":             "postgres://u:p@db/wago",
		"WAGO_WA_VERSION":               "2.3000.1031080782",
		"WAGO_LOG_LEVEL":                "DEBUG",
		"WAGO_LOG_FORMAT":               "Text",
		"WAGO_WHATSMEOW_LOG_LEVEL":      "debug",
		"WAGO_METRICS_LISTEN":           "127.0.0.1:9100",
		"WAGO_SHUTDOWN_TIMEOUT":         "3s",
		"WAGO_HTTP_READ_HEADER_TIMEOUT": "2s",
		"WAGO_HTTP_READ_TIMEOUT":        "3s",
		"WAGO_HTTP_WRITE_TIMEOUT":       "1m",
		"WAGO_HTTP_IDLE_TIMEOUT":        "500ms",
		"WAGO_HTTP_MAX_HEADER_BYTES":    "8192",
		"WAGO_CONNECT_TIMEOUT":          "5s",
		"WAGO_REDIS_URL":                "rediss://:secret@redis.example:6380/2?pool_size=5",
		"WAGO_DYNAMODB_TABLE":           "wago.prod-sessions_1",
		"WAGO_DYNAMODB_ENDPOINT":        "http://127.0.0.1:8000",
		"WAGO_DYNAMODB_CREATE_TABLE":    "false",
		"WAGO_TOKEN_CACHE_TTL":          "0",
		"WAGO_STATUS_CACHE":             "false",
		"WAGO_SHARDS":                   "1024",
		"WAGO_WHATSAPP_ADDR":            "[::1]:5222",
		"WAGO_WHATSAPP_ROOT_KEY":        strings.Repeat("ab", 32),
		"WAGO_WEBHOOK_SECRET":           "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"WAGO_WEBHOOK_FORMAT":           "JSON",
		"WAGO_WEBHOOK_RETRY_SCHEDULE":   "0s, 100ms,1s",
		"WAGO_WEBHOOK_TIMEOUT":          "2s",
		"WAGO_WEBHOOK_CONCURRENCY":      "3",
		"WAGO_WEBHOOK_DENY_PRIVATE":     "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		AdminToken: "admin", Listen: "127.0.0.1:0", DataDir: "/var/lib/wago",
		WhatsmeowDB: "postgres://u:p@db/wago", WAVersion: "2.3000.1031080782", LogLevel: "DEBUG",
		LogFormat: "text", WhatsmeowLogLevel: "debug", MetricsListen: "127.0.0.1:9100", ShutdownTimeout: 3 * time.Second,
		ReadHeaderTimeout: 2 * time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: time.Minute,
		IdleTimeout: 500 * time.Millisecond, MaxHeaderBytes: 8192, ConnectTimeout: 5 * time.Second,
		RedisURL: "rediss://:secret@redis.example:6380/2?pool_size=5", DynamoDBTable: "wago.prod-sessions_1",
		DynamoDBEndpoint: "http://127.0.0.1:8000", DynamoDBCreateTable: false, TokenCacheTTL: 0, StatusCache: false, Shards: 1024,
		WhatsAppAddr: "[::1]:5222", WhatsAppRootKey: strings.Repeat("ab", 32),
		WebhookSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", WebhookFormat: "json",
		WebhookRetrySchedule: "0s, 100ms,1s", WebhookTimeout: 2 * time.Second, WebhookConcurrency: 3,
		WebhookDenyPrivate: true,
	}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if got := c.KeyStore(); got != "postgres://u:p@db/wago" {
		t.Errorf("KeyStore() = %q", got)
	}
	if got, want := defaultConfig().KeyStore(), filepath.Join("data", "whatsmeow.db"); got != want {
		t.Errorf("default KeyStore() = %q, want %q", got, want)
	}
	if got := c.slogLevel().String(); got != "DEBUG" {
		t.Errorf("slogLevel() = %s", got)
	}
}

// TestConfigErrors: each bad value is refused with an error that names its
// variable and the rule, and every variable with a rule has a case here.
func TestConfigErrors(t *testing.T) {
	const rootKey = "WAGO_WHATSAPP_ROOT_KEY"
	tests := []struct {
		name   string
		env    map[string]string
		mutate func(*Config) // for values the environment cannot express
		want   []string      // substrings of the error
		hidden string        // must not appear in the error
	}{
		{name: "log level", env: map[string]string{"WAGO_LOG_LEVEL": "verbose"},
			want: []string{`WAGO_LOG_LEVEL: must be one of debug, info, warn, error, got "verbose"`}},
		{name: "log level with offset", env: map[string]string{"WAGO_LOG_LEVEL": "INFO+2"},
			want: []string{`WAGO_LOG_LEVEL: must be one of debug, info, warn, error`}},
		{name: "log format", env: map[string]string{"WAGO_LOG_FORMAT": "logfmt"},
			want: []string{`WAGO_LOG_FORMAT: must be json or text, got "logfmt"`}},
		{name: "whatsmeow log level", env: map[string]string{"WAGO_WHATSMEOW_LOG_LEVEL": "trace"},
			want: []string{`WAGO_WHATSMEOW_LOG_LEVEL: must be one of debug, info, warn, error, got "trace"`}},
		{name: "metrics listen without port", env: map[string]string{"WAGO_METRICS_LISTEN": "9100"},
			want: []string{`WAGO_METRICS_LISTEN: must be host:port`}},
		{name: "metrics listen on the API's address", env: map[string]string{"WAGO_LISTEN": ":9100", "WAGO_METRICS_LISTEN": ":9100"},
			want: []string{`WAGO_METRICS_LISTEN: must differ from WAGO_LISTEN`}},
		{name: "shutdown timeout zero", env: map[string]string{"WAGO_SHUTDOWN_TIMEOUT": "0s"},
			want: []string{`WAGO_SHUTDOWN_TIMEOUT: must be more than 0`}},
		{name: "listen without port", env: map[string]string{"WAGO_LISTEN": "1337"},
			want: []string{`WAGO_LISTEN: must be host:port`, `got "1337"`}},
		{name: "listen port out of range", env: map[string]string{"WAGO_LISTEN": ":65536"},
			want: []string{`WAGO_LISTEN: must be host:port with a port from 0 to 65535`}},
		{name: "listen port by name", env: map[string]string{"WAGO_LISTEN": "localhost:http"},
			want: []string{`WAGO_LISTEN: must be host:port`}},
		{name: "data dir empty", mutate: func(c *Config) { c.DataDir = "" },
			want: []string{`WAGO_DATA_DIR: must name a directory`}},
		{name: "key store scheme", env: map[string]string{"WAGO_WHATSMEOW_DB": "mysql://db/wago"},
			want: []string{`WAGO_WHATSMEOW_DB: must be a SQLite file path, a postgres:// URL or dynamodb://<table>, got a mysql:// URL`}},
		{name: "key store DynamoDB table", env: map[string]string{"WAGO_WHATSMEOW_DB": "dynamodb://no"},
			want: []string{`WAGO_WHATSMEOW_DB: dynamodb://<table>: the table name must be 3 to 255 letters`}},
		{name: "WA version two parts", env: map[string]string{"WAGO_WA_VERSION": "2.3000"},
			want: []string{`WAGO_WA_VERSION: must be a WhatsApp Web version such as 2.3000.1031080782`, `want three dot-separated numbers`}},
		{name: "WA version not numeric", env: map[string]string{"WAGO_WA_VERSION": "2.3000.x"},
			want: []string{`WAGO_WA_VERSION: must be a WhatsApp Web version`}},
		{name: "WA version zero", env: map[string]string{"WAGO_WA_VERSION": "0.0.0"},
			want: []string{`WAGO_WA_VERSION: must be a WhatsApp Web version`, `is zero`}},
		{name: "webhook secret", env: map[string]string{"WAGO_WEBHOOK_SECRET": "not-a-whsec-secret"},
			want: []string{`WAGO_WEBHOOK_SECRET: must be whsec_ followed by the base64`}, hidden: "not-a-whsec-secret"},
		{name: "webhook timeout zero", env: map[string]string{"WAGO_WEBHOOK_TIMEOUT": "0s"},
			want: []string{`WAGO_WEBHOOK_TIMEOUT: must be more than 0, got 0s`}},
		{name: "inline media negative", env: map[string]string{"WAGO_WEBHOOK_INLINE_MEDIA": "-1"},
			want: []string{`WAGO_WEBHOOK_INLINE_MEDIA: must be from 0 to 67108864, got -1`}},
		{name: "webhook concurrency zero", env: map[string]string{"WAGO_WEBHOOK_CONCURRENCY": "0"},
			want: []string{`WAGO_WEBHOOK_CONCURRENCY: must be from 1 to 1024, got 0`}},
		{name: "webhook schedule", env: map[string]string{"WAGO_WEBHOOK_RETRY_SCHEDULE": "5s,soon"},
			want: []string{`WAGO_WEBHOOK_RETRY_SCHEDULE: must be a comma-separated list of durations`}},
		{name: "webhook format", env: map[string]string{"WAGO_WEBHOOK_FORMAT": "xml"},
			want: []string{`WAGO_WEBHOOK_FORMAT: must be form or json`}},
		{name: "header timeout unitless", env: map[string]string{"WAGO_HTTP_READ_HEADER_TIMEOUT": "10"},
			want: []string{`WAGO_HTTP_READ_HEADER_TIMEOUT: must be a duration such as 500ms, 10s or 2m, got "10"`}},
		{name: "header timeout zero", env: map[string]string{"WAGO_HTTP_READ_HEADER_TIMEOUT": "0s"},
			want: []string{`WAGO_HTTP_READ_HEADER_TIMEOUT: must be more than 0, got 0s`}},
		{name: "read timeout negative", env: map[string]string{"WAGO_HTTP_READ_TIMEOUT": "-1s"},
			want: []string{`WAGO_HTTP_READ_TIMEOUT: must be more than 0, got -1s`}},
		{name: "read timeout garbage", env: map[string]string{"WAGO_HTTP_READ_TIMEOUT": "soon"},
			want: []string{`WAGO_HTTP_READ_TIMEOUT: must be a duration`}},
		{name: "write timeout zero", env: map[string]string{"WAGO_HTTP_WRITE_TIMEOUT": "0"},
			want: []string{`WAGO_HTTP_WRITE_TIMEOUT: must be more than 0, got 0s`}},
		{name: "write timeout garbage", env: map[string]string{"WAGO_HTTP_WRITE_TIMEOUT": "1 minute"},
			want: []string{`WAGO_HTTP_WRITE_TIMEOUT: must be a duration`}},
		{name: "connect timeout zero", env: map[string]string{"WAGO_CONNECT_TIMEOUT": "0s"},
			want: []string{`WAGO_CONNECT_TIMEOUT: must be more than 0`}},
		{name: "connect timeout too long", env: map[string]string{"WAGO_CONNECT_TIMEOUT": "2m"},
			want: []string{`WAGO_CONNECT_TIMEOUT: must be at most 1m0s`}},
		{name: "idle timeout zero", env: map[string]string{"WAGO_HTTP_IDLE_TIMEOUT": "0ms"},
			want: []string{`WAGO_HTTP_IDLE_TIMEOUT: must be more than 0`}},
		{name: "idle timeout garbage", env: map[string]string{"WAGO_HTTP_IDLE_TIMEOUT": "2mins"},
			want: []string{`WAGO_HTTP_IDLE_TIMEOUT: must be a duration`}},
		{name: "max header bytes with unit", env: map[string]string{"WAGO_HTTP_MAX_HEADER_BYTES": "64KiB"},
			want: []string{`WAGO_HTTP_MAX_HEADER_BYTES: must be a whole number, got "64KiB"`}},
		{name: "max header bytes too small", env: map[string]string{"WAGO_HTTP_MAX_HEADER_BYTES": "100"},
			want: []string{`WAGO_HTTP_MAX_HEADER_BYTES: must be from 1024 to 1048576, got 100`}},
		{name: "max header bytes too large", env: map[string]string{"WAGO_HTTP_MAX_HEADER_BYTES": "1048577"},
			want: []string{`WAGO_HTTP_MAX_HEADER_BYTES: must be from 1024 to 1048576, got 1048577`}},
		{name: "redis scheme", env: map[string]string{"WAGO_REDIS_URL": "http://:hunter2@127.0.0.1:6379"},
			want: []string{`WAGO_REDIS_URL: must be a redis:// or rediss:// URL`}, hidden: "hunter2"},
		{name: "redis port", env: map[string]string{"WAGO_REDIS_URL": "redis://:hunter2@127.0.0.1:six/0"},
			want: []string{`WAGO_REDIS_URL: must be a redis:// or rediss:// URL`, `invalid port`}, hidden: "hunter2"},
		{name: "redis database", env: map[string]string{"WAGO_REDIS_URL": "redis://127.0.0.1:6379/zero"},
			want: []string{`WAGO_REDIS_URL: must be a redis:// or rediss:// URL`, `invalid database number`}},
		{name: "table too short", env: map[string]string{"WAGO_DYNAMODB_TABLE": "ab"},
			want: []string{`WAGO_DYNAMODB_TABLE: must be 3 to 255 letters, digits, '_', '-' or '.', got "ab"`}},
		{name: "table characters", env: map[string]string{"WAGO_DYNAMODB_TABLE": "wago sessions"},
			want: []string{`WAGO_DYNAMODB_TABLE: must be 3 to 255`}},
		{name: "endpoint without scheme", env: map[string]string{"WAGO_DYNAMODB_ENDPOINT": "localhost:8000"},
			want: []string{`WAGO_DYNAMODB_ENDPOINT: must be an http:// or https:// URL such as http://127.0.0.1:8000, got "localhost:8000"`}},
		{name: "endpoint scheme", env: map[string]string{"WAGO_DYNAMODB_ENDPOINT": "ftp://127.0.0.1:8000"},
			want: []string{`WAGO_DYNAMODB_ENDPOINT: must be an http:// or https:// URL`}},
		{name: "create table", env: map[string]string{"WAGO_DYNAMODB_CREATE_TABLE": "yes"},
			want: []string{`WAGO_DYNAMODB_CREATE_TABLE: must be true or false, got "yes"`}},
		{name: "status cache", env: map[string]string{"WAGO_STATUS_CACHE": "on"},
			want: []string{`WAGO_STATUS_CACHE: must be true or false, got "on"`}},
		{name: "deny private", env: map[string]string{"WAGO_WEBHOOK_DENY_PRIVATE": "no way"},
			want: []string{`WAGO_WEBHOOK_DENY_PRIVATE: must be true or false, got "no way"`}},
		{name: "cache TTL unitless", env: map[string]string{"WAGO_TOKEN_CACHE_TTL": "5"},
			want: []string{`WAGO_TOKEN_CACHE_TTL: must be a duration such as 500ms, 10s or 2m, got "5"`}},
		{name: "cache TTL negative", env: map[string]string{"WAGO_TOKEN_CACHE_TTL": "-5s"},
			want: []string{`WAGO_TOKEN_CACHE_TTL: must be 0 or more, got -5s`}},
		{name: "shards not numeric", env: map[string]string{"WAGO_SHARDS": "sixteen"},
			want: []string{`WAGO_SHARDS: must be a whole number, got "sixteen"`}},
		{name: "shards fraction", env: map[string]string{"WAGO_SHARDS": "16.5"},
			want: []string{`WAGO_SHARDS: must be a whole number, got "16.5"`}},
		{name: "shards zero", env: map[string]string{"WAGO_SHARDS": "0"},
			want: []string{`WAGO_SHARDS: must be from 1 to 1024, got 0`}},
		{name: "shards too many", env: map[string]string{"WAGO_SHARDS": "1025"},
			want: []string{`WAGO_SHARDS: must be from 1 to 1024, got 1025`}},
		{name: "whatsapp addr", env: map[string]string{"WAGO_WHATSAPP_ADDR": "localhost"},
			want: []string{`WAGO_WHATSAPP_ADDR: must be host:port`, `got "localhost"`}},
		{name: "root key length", env: map[string]string{rootKey: "abcd"},
			want: []string{`WAGO_WHATSAPP_ROOT_KEY: root key must be 64 hex characters`}},
		{name: "root key not hex", env: map[string]string{rootKey: strings.Repeat("zz", 32)},
			want: []string{`WAGO_WHATSAPP_ROOT_KEY: root key must be 64 hex characters`}},
		{name: "every bad variable at once",
			env:  map[string]string{"WAGO_LOG_LEVEL": "verbose", "WAGO_SHARDS": "-1", "WAGO_TOKEN_CACHE_TTL": "5"},
			want: []string{"WAGO_LOG_LEVEL: ", "WAGO_SHARDS: must be from 1 to 1024, got -1", "WAGO_TOKEN_CACHE_TTL: must be a duration"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.mutate != nil {
				c := defaultConfig()
				tt.mutate(&c)
				err = c.Validate()
			} else {
				_, err = readConfig(lookupIn(tt.env))
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
				covered[w[:strings.Index(w+":", ":")]] = true
			}
			if tt.hidden != "" && strings.Contains(err.Error(), tt.hidden) {
				t.Errorf("error %q repeats the secret %q", err, tt.hidden)
			}
			if n, want := strings.Count(err.Error(), "\n")+1, len(tt.want); len(tt.env) > 1 && n != want {
				t.Errorf("%d error lines, want %d: %q", n, want, err)
			}
		})
	}
	for _, s := range settings {
		// A rule is a check, or a loader that refuses a value (a bool, a
		// duration, a number, one of a list).
		var c Config
		if s.check != nil || s.load(&c, "\x00no such value") != nil {
			if !covered[s.name] {
				t.Errorf("%s has a rule but no case in TestConfigErrors", s.name)
			}
		}
	}
}

// TestConfigRoles: the distributed roles need what they cannot default.
func TestConfigRoles(t *testing.T) {
	c := defaultConfig()
	if err := c.validateRole("serve"); err != nil {
		t.Errorf("serve: %v", err)
	}
	err := c.validateRole("api")
	for _, w := range []string{"WAGO_REDIS_URL: required by the api role", "WAGO_ADMIN_TOKEN: required by the api role"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("api: error %v does not contain %q", err, w)
		}
	}
	if err := c.validateRole("connector"); err == nil || !strings.Contains(err.Error(), "WAGO_REDIS_URL: required by the connector role") {
		t.Errorf("connector: %v", err)
	}
	c.RedisURL, c.AdminToken = "redis://127.0.0.1:6379/0", "admin"
	for _, role := range []string{"api", "connector"} {
		if err := c.validateRole(role); err != nil {
			t.Errorf("%s: %v", role, err)
		}
	}
}

// TestDataDirNotWritable: a data directory that cannot be created or
// written is refused with its path and the cause, not SQLite's "unable to
// open database file". The tests run as root here, which chmod does not
// stop; what really fails for root: a path under a regular file (always),
// and an immutable directory (chattr +i, where the file system and the
// capabilities allow it; skipped otherwise).
func TestDataDirNotWritable(t *testing.T) {
	tmp := t.TempDir()
	if err := prepareDataDir(filepath.Join(tmp, "fresh", "data")); err != nil {
		t.Fatalf("a fresh directory: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(tmp, "fresh", "data")); len(entries) != 0 {
		t.Fatalf("the probe file was left behind: %v", entries)
	}

	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(tmp, "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(file, "data")
		err := prepareDataDir(dir)
		if want := "data directory " + dir + " cannot be created: not a directory"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})

	t.Run("missing key store directory", func(t *testing.T) {
		dir := filepath.Join(tmp, "missing")
		err := checkWritable("key store directory", dir)
		if want := "key store directory " + dir + " is not writable: no such file or directory"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})

	t.Run("immutable", func(t *testing.T) {
		dir := filepath.Join(tmp, "immutable")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Skipf("cannot make a directory immutable here (chattr +i: %v %s)", err, out)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
		err := prepareDataDir(dir)
		if want := "data directory " + dir + " is not writable: operation not permitted"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
		if !errors.Is(err, os.ErrPermission) {
			t.Errorf("%v is not os.ErrPermission", err)
		}
	})

	t.Run("read-only mode", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: chmod 0500 does not stop root")
		}
		dir := filepath.Join(tmp, "readonly")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		err := prepareDataDir(dir)
		if want := "data directory " + dir + " is not writable: permission denied"; err == nil || err.Error() != want {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
}

// TestMainStopsOnBadConfig runs main in a child process: a bad variable
// stops it with exit status 2 and the variable named, before it creates
// its data directory or listens; a data directory it cannot create stops
// it with the path and the cause.
func TestMainStopsOnBadConfig(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, role string
		env        []string
		code       int
		want       []string
	}{
		{"log level", "serve", []string{"WAGO_LOG_LEVEL=verbose"}, 2,
			[]string{`WAGO_LOG_LEVEL: must be one of debug, info, warn, error, got "verbose"`}},
		{"WA version and shards", "serve", []string{"WAGO_WA_VERSION=2.3000", "WAGO_SHARDS=x"}, 2,
			[]string{"WAGO_WA_VERSION: must be a WhatsApp Web version", `WAGO_SHARDS: must be a whole number, got "x"`}},
		{"api without Redis", "api", []string{"WAGO_REDIS_URL=", "WAGO_ADMIN_TOKEN="}, 2,
			[]string{"WAGO_REDIS_URL: required by the api role", "WAGO_ADMIN_TOKEN: required by the api role"}},
		{"data dir under a file", "serve", []string{"WAGO_DATA_DIR=" + filepath.Join(file, "data")}, 1,
			[]string{"data directory " + filepath.Join(file, "data") + " cannot be created: not a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "WAGO_CONFIG_TEST_MAIN="+tt.role, "WAGO_DATA_DIR="+dataDir,
				"WAGO_LISTEN=127.0.0.1:0", "AWS_LAMBDA_RUNTIME_API=")
			cmd.Env = append(cmd.Env, tt.env...)
			done := make(chan struct{})
			timer := time.AfterFunc(30*time.Second, func() {
				select {
				case <-done:
				default:
					cmd.Process.Kill()
				}
			})
			out, err := cmd.CombinedOutput()
			close(done)
			timer.Stop()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tt.code {
				t.Fatalf("exit: %v, want status %d\n%s", err, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output does not contain %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(dataDir); tt.code == 2 && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data directory was created (%v) before the configuration was checked", err)
			}
		})
	}
}
