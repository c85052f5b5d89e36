//go:build lambda.norpc

package main

import (
	"context"
	"errors"
	"log/slog"
)

// The AWS Lambda build (-tags lambda.norpc) links only the stateless API:
// whatsmeow, SQLite and the connector stay out of it, which halves the
// bootstrap binary and its cold start.
var errLambdaBuild = errors.New("this is the AWS Lambda build of wago: it serves only the api role; build without -tags lambda.norpc for serve and connector")

func serve(context.Context, *slog.Logger) error { return errLambdaBuild }

func connectorRole(context.Context, *slog.Logger) error { return errLambdaBuild }
