package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wago-gw/wago/shared"
	"github.com/wago-gw/wago/shared/redisbus"
	"github.com/wago-gw/wago/shared/webhook"
)

// The defaults of Config, named so that the README's table, the code and
// the tests speak of the same values.
const (
	defaultListen    = ":1337"
	defaultDataDir   = "./data"
	defaultLogLevel  = "info"
	defaultLogFormat = "json"
	// defaultWhatsmeowLogLevel lets whatsmeow's warnings and errors through:
	// it is chatty at info and debug.
	defaultWhatsmeowLogLevel = "warn"
	// defaultShutdownTimeout bounds a clean stop after SIGTERM/SIGINT.
	defaultShutdownTimeout = 10 * time.Second
	defaultDynamoDBTable   = "wago-sessions"
	defaultTokenCacheTTL   = 5 * time.Second
	defaultShards          = redisbus.DefaultShards

	// defaultReadHeaderTimeout bounds how long a client may take to send a
	// request's headers: a few KiB, which any link sends in well under 10 s.
	defaultReadHeaderTimeout = 10 * time.Second
	// defaultReadTimeout bounds how long a client may take to send a whole
	// request, headers and body, from its first byte. 120 s carries a
	// 64 MiB media body at 4.5 Mbit/s; a request body that never finishes
	// holds its connection no longer than this.
	defaultReadTimeout = 120 * time.Second
	// defaultWriteTimeout bounds the time from the end of a request's
	// headers to the end of its answer: it covers reading the body (up to
	// the read timeout) and the longest handler, which waits up to about
	// 25 s for WhatsApp, with room to spare.
	defaultWriteTimeout = 150 * time.Second
	// defaultIdleTimeout closes a keep-alive connection that sends no new
	// request for this long.
	defaultIdleTimeout = 120 * time.Second
	// defaultConnectTimeout bounds a connect attempt: dialling WhatsApp and
	// the Noise handshake.
	defaultConnectTimeout = 20 * time.Second
	// maxConnectTimeout keeps a connect's answer within what the API's
	// write timeout and the Redis transport's wait allow.
	maxConnectTimeout = 60 * time.Second
	// defaultMaxHeaderBytes bounds a request's headers (net/http reads up to
	// 4 KiB more before it answers 431). Go's own default, 1 MiB, let 200
	// unfinished headers hold about 470 MB.
	defaultMaxHeaderBytes = 64 << 10
)

// Config is wago's configuration, read once from the environment at start
// (loadConfig) and handed to the role that runs. Every field is set by
// exactly one WAGO_* variable (see settings and the README's
// "Configuration" table); an empty variable counts as unset.
type Config struct {
	// AdminToken is WAGO_ADMIN_TOKEN. Empty: the all-in-one role generates
	// one and keeps it in DataDir; the api role refuses to start.
	AdminToken string
	// LogLevel is WAGO_LOG_LEVEL: debug, info, warn or error, in any case.
	LogLevel string
	// LogFormat is WAGO_LOG_FORMAT: json or text.
	LogFormat string
	// WhatsmeowLogLevel is WAGO_WHATSMEOW_LOG_LEVEL: the level from which
	// whatsmeow's own logs pass (WAGO_LOG_LEVEL still applies).
	WhatsmeowLogLevel string
	// MetricsListen is WAGO_METRICS_LISTEN: a second listen address that
	// serves /metrics without a token, /health and /ready. Empty: none.
	MetricsListen string
	// ShutdownTimeout is WAGO_SHUTDOWN_TIMEOUT: how long a stop after
	// SIGTERM/SIGINT may take before the process exits anyway.
	ShutdownTimeout time.Duration

	// Listen is WAGO_LISTEN, the HTTP listen address (host:port; the host
	// may be empty).
	Listen string
	// ReadHeaderTimeout is WAGO_HTTP_READ_HEADER_TIMEOUT: how long a client
	// may take to send a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is WAGO_HTTP_READ_TIMEOUT: how long a client may take to
	// send a whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout is WAGO_HTTP_WRITE_TIMEOUT: how long may pass from the
	// end of a request's headers to the end of its answer.
	WriteTimeout time.Duration
	// IdleTimeout is WAGO_HTTP_IDLE_TIMEOUT: how long a keep-alive
	// connection may wait for its next request.
	IdleTimeout time.Duration
	// MaxHeaderBytes is WAGO_HTTP_MAX_HEADER_BYTES: the largest request
	// header accepted, request line included.
	MaxHeaderBytes int

	// DataDir is WAGO_DATA_DIR: the SQLite files of the all-in-one role and
	// the connector's default key store.
	DataDir string
	// WhatsmeowDB is WAGO_WHATSMEOW_DB: the whatsmeow key store, a SQLite
	// path, a postgres:// (postgresql://) URL of a PostgreSQL database or
	// dynamodb://<table> (reached as DynamoDBEndpoint says). Empty:
	// whatsmeow.db in DataDir (KeyStore).
	WhatsmeowDB string
	// WAVersion is WAGO_WA_VERSION, the WhatsApp Web version to announce
	// (2.3000.x). Empty: fetched from WhatsApp at start.
	WAVersion string
	// ConnectTimeout is WAGO_CONNECT_TIMEOUT: how long a connect may wait
	// for WhatsApp to answer a new connection before it answers 503.
	ConnectTimeout time.Duration

	// RedisURL is WAGO_REDIS_URL; required by the distributed roles.
	RedisURL string
	// DynamoDBTable is WAGO_DYNAMODB_TABLE, the token table of the
	// distributed roles.
	DynamoDBTable string
	// DynamoDBEndpoint is WAGO_DYNAMODB_ENDPOINT, an http(s) URL of a
	// DynamoDB-compatible service. Empty: AWS.
	DynamoDBEndpoint string
	// DynamoDBCreateTable is WAGO_DYNAMODB_CREATE_TABLE: create the table
	// when it does not exist.
	DynamoDBCreateTable bool
	// TokenCacheTTL is WAGO_TOKEN_CACHE_TTL: how long the api role caches a
	// token row; 0 turns the cache off.
	TokenCacheTTL time.Duration
	// StatusCache is WAGO_STATUS_CACHE: the api role keeps the statuses it
	// read until Redis reports a change (never on Lambda).
	StatusCache bool
	// Shards is WAGO_SHARDS, the number of shards tokens are spread over;
	// equal on every api and connector.
	Shards int

	// WebhookSecret is WAGO_WEBHOOK_SECRET: the whsec_ secret that signs
	// the deliveries of tokens without their own. Empty: those are unsigned.
	WebhookSecret string
	// WebhookFormat is WAGO_WEBHOOK_FORMAT: form (WaGo's) or json, for the
	// tokens without their own.
	WebhookFormat string
	// WebhookRetrySchedule is WAGO_WEBHOOK_RETRY_SCHEDULE: the delays before
	// each retry, comma-separated (see retrySchedule); after the last, an
	// event becomes a dead letter. Empty: webhook.DefaultSchedule.
	WebhookRetrySchedule string
	// WebhookTimeout is WAGO_WEBHOOK_TIMEOUT: how long one delivery may take.
	WebhookTimeout time.Duration
	// WebhookConcurrency is WAGO_WEBHOOK_CONCURRENCY: the deliveries in
	// flight to one receiver (scheme and host) at most.
	WebhookConcurrency int
	// WebhookDenyPrivate is WAGO_WEBHOOK_DENY_PRIVATE: refuse receivers on
	// loopback, private and link-local addresses (checked after DNS).
	WebhookDenyPrivate bool
	// WebhookInlineMedia is WAGO_WEBHOOK_INLINE_MEDIA: the size in bytes up
	// to which a received message's media is added to its webhook payload
	// (base64); 0: never, the payload only describes it.
	WebhookInlineMedia int

	// WhatsAppAddr is WAGO_WHATSAPP_ADDR, a test hook: the host:port every
	// WhatsApp connection dials in plain TCP.
	WhatsAppAddr string
	// WhatsAppRootKey is WAGO_WHATSAPP_ROOT_KEY, a test hook: 64 hex
	// characters, the root public key of the server's Noise certificates.
	WhatsAppRootKey string
}

// defaultConfig returns the configuration of an empty environment.
func defaultConfig() Config {
	return Config{
		LogLevel:            defaultLogLevel,
		LogFormat:           defaultLogFormat,
		WhatsmeowLogLevel:   defaultWhatsmeowLogLevel,
		ShutdownTimeout:     defaultShutdownTimeout,
		Listen:              defaultListen,
		ReadHeaderTimeout:   defaultReadHeaderTimeout,
		ReadTimeout:         defaultReadTimeout,
		WriteTimeout:        defaultWriteTimeout,
		IdleTimeout:         defaultIdleTimeout,
		MaxHeaderBytes:      defaultMaxHeaderBytes,
		DataDir:             defaultDataDir,
		ConnectTimeout:      defaultConnectTimeout,
		DynamoDBTable:       defaultDynamoDBTable,
		DynamoDBCreateTable: true,
		StatusCache:         true,
		TokenCacheTTL:       defaultTokenCacheTTL,
		Shards:              defaultShards,
		WebhookFormat:       shared.WebhookFormatForm,
		WebhookTimeout:      webhook.DefaultTimeout,
		WebhookConcurrency:  webhook.DefaultConcurrency,
	}
}

// setting is one environment variable of the configuration: load turns
// its (non-empty, trimmed) value into the field, failing only when the
// value does not parse; check validates the field, whether it came from the
// environment or not. Errors state the rule; the caller names the variable.
type setting struct {
	name   string
	secret bool // never repeat the value in an error
	load   func(c *Config, v string) error
	check  func(c *Config) error
}

// settings is every variable the configuration reads, in the README's
// order. loadConfig and Validate iterate it; nothing else reads WAGO_*.
var settings = []setting{
	{name: "WAGO_ADMIN_TOKEN", secret: true,
		load: func(c *Config, v string) error { c.AdminToken = v; return nil }},
	{name: "WAGO_LISTEN",
		load:  func(c *Config, v string) error { c.Listen = v; return nil },
		check: func(c *Config) error { return checkHostPort(c.Listen) }},
	{name: "WAGO_DATA_DIR",
		load: func(c *Config, v string) error { c.DataDir = v; return nil },
		check: func(c *Config) error {
			if c.DataDir == "" {
				return errors.New("must name a directory")
			}
			return nil
		}},
	{name: "WAGO_WHATSMEOW_DB",
		load:  func(c *Config, v string) error { c.WhatsmeowDB = v; return nil },
		check: func(c *Config) error { return checkKeyStore(c.WhatsmeowDB) }},
	{name: "WAGO_WA_VERSION",
		load: func(c *Config, v string) error { c.WAVersion = v; return nil },
		check: func(c *Config) error {
			if c.WAVersion == "" {
				return nil
			}
			if err := checkWAVersion(c.WAVersion); err != nil {
				return fmt.Errorf("must be a WhatsApp Web version such as 2.3000.1031080782: %w", err)
			}
			return nil
		}},
	{name: "WAGO_CONNECT_TIMEOUT",
		load: func(c *Config, v string) error { return loadDuration(&c.ConnectTimeout, v) },
		check: func(c *Config) error {
			if err := checkPositive(c.ConnectTimeout); err != nil {
				return err
			}
			if c.ConnectTimeout > maxConnectTimeout {
				return fmt.Errorf("must be at most %s (the API waits for the connector's answer about that long), got %s", maxConnectTimeout, c.ConnectTimeout)
			}
			return nil
		}},
	{name: "WAGO_LOG_LEVEL",
		load:  func(c *Config, v string) error { c.LogLevel = v; return nil },
		check: func(c *Config) error { return checkLogLevel(c.LogLevel) }},
	{name: "WAGO_LOG_FORMAT",
		load: func(c *Config, v string) error { c.LogFormat = strings.ToLower(v); return nil },
		check: func(c *Config) error {
			if c.LogFormat != "json" && c.LogFormat != "text" {
				return fmt.Errorf("must be json or text, got %q", c.LogFormat)
			}
			return nil
		}},
	{name: "WAGO_WHATSMEOW_LOG_LEVEL",
		load:  func(c *Config, v string) error { c.WhatsmeowLogLevel = v; return nil },
		check: func(c *Config) error { return checkLogLevel(c.WhatsmeowLogLevel) }},
	{name: "WAGO_METRICS_LISTEN",
		load: func(c *Config, v string) error { c.MetricsListen = v; return nil },
		check: func(c *Config) error {
			if c.MetricsListen == "" {
				return nil
			}
			if c.MetricsListen == c.Listen {
				return errors.New("must differ from WAGO_LISTEN (on WAGO_LISTEN, /metrics needs the admin token)")
			}
			return checkHostPort(c.MetricsListen)
		}},
	{name: "WAGO_SHUTDOWN_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.ShutdownTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.ShutdownTimeout) }},
	{name: "WAGO_HTTP_READ_HEADER_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.ReadHeaderTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.ReadHeaderTimeout) }},
	{name: "WAGO_HTTP_READ_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.ReadTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.ReadTimeout) }},
	{name: "WAGO_HTTP_WRITE_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.WriteTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.WriteTimeout) }},
	{name: "WAGO_HTTP_IDLE_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.IdleTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.IdleTimeout) }},
	{name: "WAGO_HTTP_MAX_HEADER_BYTES",
		load: func(c *Config, v string) error { return loadInt(&c.MaxHeaderBytes, v) },
		check: func(c *Config) error {
			return checkRange(c.MaxHeaderBytes, minMaxHeaderBytes, maxMaxHeaderBytes)
		}},
	{name: "WAGO_REDIS_URL", secret: true,
		load:  func(c *Config, v string) error { c.RedisURL = v; return nil },
		check: func(c *Config) error { return checkRedisURL(c.RedisURL) }},
	{name: "WAGO_DYNAMODB_TABLE",
		load:  func(c *Config, v string) error { c.DynamoDBTable = v; return nil },
		check: func(c *Config) error { return checkTableName(c.DynamoDBTable) }},
	{name: "WAGO_DYNAMODB_ENDPOINT",
		load:  func(c *Config, v string) error { c.DynamoDBEndpoint = v; return nil },
		check: func(c *Config) error { return checkEndpoint(c.DynamoDBEndpoint) }},
	{name: "WAGO_DYNAMODB_CREATE_TABLE",
		load: func(c *Config, v string) error { return loadBool(&c.DynamoDBCreateTable, v) }},
	{name: "WAGO_STATUS_CACHE",
		load: func(c *Config, v string) error { return loadBool(&c.StatusCache, v) }},
	{name: "WAGO_TOKEN_CACHE_TTL",
		load: func(c *Config, v string) error { return loadDuration(&c.TokenCacheTTL, v) },
		check: func(c *Config) error {
			if c.TokenCacheTTL < 0 {
				return fmt.Errorf("must be 0 or more, got %s", c.TokenCacheTTL)
			}
			return nil
		}},
	{name: "WAGO_SHARDS",
		load:  func(c *Config, v string) error { return loadInt(&c.Shards, v) },
		check: func(c *Config) error { return checkRange(c.Shards, 1, redisbus.MaxShards) }},
	{name: "WAGO_WEBHOOK_SECRET", secret: true,
		load: func(c *Config, v string) error { c.WebhookSecret = v; return nil },
		check: func(c *Config) error {
			if shared.CheckWebhookSecret(c.WebhookSecret) != nil {
				return errors.New("must be whsec_ followed by the base64 of 24 to 64 random bytes")
			}
			return nil
		}},
	{name: "WAGO_WEBHOOK_FORMAT",
		load: func(c *Config, v string) error {
			f, err := shared.CheckWebhookFormat(v)
			if err != nil {
				return errors.New("must be form or json")
			}
			c.WebhookFormat = f
			return nil
		}},
	{name: "WAGO_WEBHOOK_RETRY_SCHEDULE",
		load: func(c *Config, v string) error {
			if _, err := parseSchedule(v); err != nil {
				return err
			}
			c.WebhookRetrySchedule = v
			return nil
		}},
	{name: "WAGO_WEBHOOK_TIMEOUT",
		load:  func(c *Config, v string) error { return loadDuration(&c.WebhookTimeout, v) },
		check: func(c *Config) error { return checkPositive(c.WebhookTimeout) }},
	{name: "WAGO_WEBHOOK_CONCURRENCY",
		load:  func(c *Config, v string) error { return loadInt(&c.WebhookConcurrency, v) },
		check: func(c *Config) error { return checkRange(c.WebhookConcurrency, 1, 1024) }},
	{name: "WAGO_WEBHOOK_DENY_PRIVATE",
		load: func(c *Config, v string) error { return loadBool(&c.WebhookDenyPrivate, v) }},
	{name: "WAGO_WEBHOOK_INLINE_MEDIA",
		load: func(c *Config, v string) error { return loadInt(&c.WebhookInlineMedia, v) },
		check: func(c *Config) error {
			return checkRange(c.WebhookInlineMedia, 0, int(shared.MaxMediaSize[shared.KindVideo]))
		}},
	{name: "WAGO_WHATSAPP_ADDR",
		load: func(c *Config, v string) error { c.WhatsAppAddr = v; return nil },
		check: func(c *Config) error {
			if c.WhatsAppAddr == "" {
				return nil
			}
			return checkHostPort(c.WhatsAppAddr)
		}},
	{name: "WAGO_WHATSAPP_ROOT_KEY",
		load: func(c *Config, v string) error { c.WhatsAppRootKey = v; return nil },
		check: func(c *Config) error {
			if c.WhatsAppRootKey == "" {
				return nil
			}
			_, err := parseRootKey(c.WhatsAppRootKey)
			return err
		}},
}

// The bounds of WAGO_HTTP_MAX_HEADER_BYTES: below 1 KiB ordinary requests
// fail; above 1 MiB (Go's default) unfinished headers cost too much memory.
const (
	minMaxHeaderBytes = 1 << 10
	maxMaxHeaderBytes = 1 << 20
)

// logLevels maps WAGO_LOG_LEVEL's values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func checkLogLevel(level string) error {
	if _, ok := logLevels[strings.ToLower(level)]; !ok {
		return fmt.Errorf("must be one of debug, info, warn, error, got %q", level)
	}
	return nil
}

// loadConfig reads the configuration from the environment and validates
// it. Its error names every bad variable, one per line, with the rule the
// value breaks.
func loadConfig() (Config, error) { return readConfig(os.LookupEnv) }

// readConfig is loadConfig over any lookup function (tests pass their own).
func readConfig(lookup func(string) (string, bool)) (Config, error) {
	c := defaultConfig()
	loadErrs := map[string]error{}
	for _, s := range settings {
		v, ok := lookup(s.name)
		if v = strings.TrimSpace(v); !ok || v == "" {
			continue
		}
		if err := s.load(&c, v); err != nil {
			if !s.secret {
				err = fmt.Errorf("%w, got %q", err, v)
			}
			loadErrs[s.name] = err
		}
	}
	return c, c.validate(loadErrs)
}

// Validate reports every field that breaks its rule, one per line, naming
// the variable that sets it.
func (c Config) Validate() error { return c.validate(nil) }

// validate is Validate, reporting loadErrs (by variable) in place of the
// checks of the variables that did not load.
func (c Config) validate(loadErrs map[string]error) error {
	var errs []error
	for _, s := range settings {
		err := loadErrs[s.name]
		if err == nil && s.check != nil {
			err = s.check(&c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// validateRole reports what role needs and c lacks: the distributed roles
// need Redis, and the api role an admin token (it cannot keep a generated
// one anywhere).
func (c Config) validateRole(role string) error {
	var errs []error
	if (role == "api" || role == "connector") && c.RedisURL == "" {
		errs = append(errs, fmt.Errorf("WAGO_REDIS_URL: required by the %s role", role))
	}
	if role == "api" && c.AdminToken == "" {
		errs = append(errs, errors.New("WAGO_ADMIN_TOKEN: required by the api role"))
	}
	return errors.Join(errs...)
}

// KeyStore returns the whatsmeow key store's address: WhatsmeowDB, or
// whatsmeow.db in DataDir.
func (c Config) KeyStore() string {
	if c.WhatsmeowDB != "" {
		return c.WhatsmeowDB
	}
	return filepath.Join(c.DataDir, "whatsmeow.db")
}

// retrySchedule returns WebhookRetrySchedule as durations (nil: the
// default schedule).
func (c Config) retrySchedule() []time.Duration {
	if c.WebhookRetrySchedule == "" {
		return nil
	}
	s, _ := parseSchedule(c.WebhookRetrySchedule)
	return s
}

// parseSchedule reads a comma-separated list of durations, none negative.
func parseSchedule(v string) ([]time.Duration, error) {
	var out []time.Duration
	for _, part := range strings.Split(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d < 0 {
			return nil, errors.New("must be a comma-separated list of durations such as 5s,5m,30m")
		}
		out = append(out, d)
	}
	return out, nil
}

// slogLevel returns LogLevel as a slog level (info when it is invalid,
// which Validate prevents).
func (c Config) slogLevel() slog.Level { return logLevels[strings.ToLower(c.LogLevel)] }

// whatsmeowLevel returns WhatsmeowLogLevel as a slog level.
func (c Config) whatsmeowLevel() slog.Level { return logLevels[strings.ToLower(c.WhatsmeowLogLevel)] }

// logger returns the process's logger on w: JSON or text (LogFormat), from
// LogLevel.
func (c Config) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.slogLevel()}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func loadDuration(d *time.Duration, v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("must be a duration such as 500ms, 10s or 2m")
	}
	*d = x
	return nil
}

func loadBool(b *bool, v string) error {
	parsed, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("must be true or false")
	}
	*b = parsed
	return nil
}

func loadInt(n *int, v string) error {
	x, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("must be a whole number")
	}
	*n = x
	return nil
}

func checkPositive(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("must be more than 0, got %s", d)
	}
	return nil
}

func checkRange(n, lo, hi int) error {
	if n < lo || n > hi {
		return fmt.Errorf("must be from %d to %d, got %d", lo, hi, n)
	}
	return nil
}

// checkHostPort accepts host:port with an optional host and a port number
// from 0 to 65535.
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		var n int
		n, err = strconv.Atoi(port)
		if err == nil && (n < 0 || n > 65535) {
			err = errors.New("out of range")
		}
	}
	if err != nil {
		return fmt.Errorf("must be host:port with a port from 0 to 65535 (the host may be empty, as in :1337), got %q", addr)
	}
	return nil
}

// checkKeyStore accepts a SQLite path or a postgres:// URL (empty: the
// default path).
func checkKeyStore(addr string) error {
	scheme, rest, isURL := strings.Cut(addr, "://")
	switch {
	case !isURL || scheme == "postgres" || scheme == "postgresql":
		return nil
	case scheme == "dynamodb":
		if err := checkTableName(rest); err != nil {
			return fmt.Errorf("dynamodb://<table>: the table name %w", err)
		}
		return nil
	}
	return fmt.Errorf("must be a SQLite file path, a postgres:// URL or dynamodb://<table>, got a %s:// URL", scheme)
}

// checkRedisURL accepts what go-redis parses (empty: no Redis). The value
// may hold a password, so it is never repeated.
func checkRedisURL(s string) error {
	if s == "" {
		return nil
	}
	if _, err := redis.ParseURL(s); err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Errorf("must be a redis:// or rediss:// URL such as redis://host:6379/0: %w", err)
	}
	return nil
}

// tableName is DynamoDB's rule for table names.
var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

func checkTableName(s string) error {
	if !tableName.MatchString(s) {
		return fmt.Errorf("must be 3 to 255 letters, digits, '_', '-' or '.', got %q", s)
	}
	return nil
}

// checkEndpoint accepts an absolute http(s) URL (empty: AWS).
func checkEndpoint(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL such as http://127.0.0.1:8000, got %q", s)
	}
	return nil
}
