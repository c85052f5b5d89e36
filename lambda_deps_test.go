package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLambdaBuildLinksNoWhatsmeow: the API's Lambda build links none of
// whatsmeow (the connector's key stores live apart from package shared and
// the token table's package), which would add megabytes to every cold
// start.
func TestLambdaBuildLinksNoWhatsmeow(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "lambda.norpc", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "go.mau.fi/whatsmeow") {
			t.Errorf("the Lambda build links %s", pkg)
		}
	}
}
