package functions

import (
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// OnLambda reports whether the process runs on AWS Lambda (the runtime
// sets AWS_LAMBDA_RUNTIME_API), as aws-lambda-go itself decides.
func OnLambda() bool { return os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" }

// ServeLambda serves h to API Gateway HTTP API (payload v2) events through
// the Lambda Runtime API, until the runtime stops the process. The router
// is the same as the plain server's: httpadapter turns each event into an
// http.Request and the response back into an event.
func ServeLambda(h http.Handler) {
	lambda.Start(httpadapter.NewV2(h).ProxyWithContext)
}
