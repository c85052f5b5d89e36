package connector

import (
	"testing"

	"github.com/wago-gw/wago/shared"
)

// TestEveryOpHasAHandler: an op declared in shared without a feature file
// implementing it fails here rather than at a client's request.
func TestEveryOpHasAHandler(t *testing.T) {
	ops := shared.Ops()
	if len(ops) == 0 {
		t.Fatal("no op declared")
	}
	for _, op := range ops {
		if handlers[op.Name()] == nil {
			t.Errorf("op %s has no handler in the connector", op.Name())
		}
	}
	for name := range handlers {
		if _, ok := shared.LookupOp(name); !ok {
			t.Errorf("handler for %s, which shared does not declare", name)
		}
	}
}
