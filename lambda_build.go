//go:build lambda.norpc

package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// The AWS Lambda build (-tags lambda.norpc) links only the stateless API:
// whatsmeow, SQLite and the connector stay out of it, which halves the
// bootstrap binary and its cold start.
var errLambdaBuild = errors.New("this is the AWS Lambda build of wago: it serves only the api role; build without -tags lambda.norpc for serve and connector")

func serve(context.Context, *slog.Logger, Config) error { return errLambdaBuild }

func connectorRole(context.Context, *slog.Logger, Config) error { return errLambdaBuild }

// checkWAVersion accepts any WAGO_WA_VERSION: only the connector announces
// a version, and its parser (with whatsmeow) is not linked into this build.
func checkWAVersion(string) error { return nil }

// parseRootKey accepts any WAGO_WHATSAPP_ROOT_KEY: only the connector uses
// the key, and its parser is not linked into this build.
func parseRootKey(string) (*[32]byte, error) { return nil, nil }

// newMetrics returns no registry: the Lambda build serves no /metrics, so
// neither the metrics server nor the runtime collectors are linked.
func newMetrics() (prometheus.Registerer, http.Handler) { return nil, nil }
