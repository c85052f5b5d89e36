package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// templatePath is the SAM template, relative to this package.
const templatePath = "../template.yaml"

// maxBootstrapSize bounds the stripped Lambda binary.
const maxBootstrapSize = 25 << 20

// samTemplate is the part of template.yaml the tests read. Values written
// with intrinsic functions (!Ref, !GetAtt, !If) are left undecoded.
type samTemplate struct {
	Transform string `yaml:"Transform"`
	Globals   struct {
		Function struct {
			CodeUri       string   `yaml:"CodeUri"`
			Handler       string   `yaml:"Handler"`
			Runtime       string   `yaml:"Runtime"`
			Architectures []string `yaml:"Architectures"`
			Environment   struct {
				Variables map[string]yaml.Node `yaml:"Variables"`
			} `yaml:"Environment"`
		} `yaml:"Function"`
	} `yaml:"Globals"`
	Resources map[string]samResource `yaml:"Resources"`
}

type samResource struct {
	Type     string `yaml:"Type"`
	Metadata struct {
		BuildMethod string `yaml:"BuildMethod"`
	} `yaml:"Metadata"`
	Properties struct {
		Events map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				Method               string `yaml:"Method"`
				Path                 string `yaml:"Path"`
				PayloadFormatVersion string `yaml:"PayloadFormatVersion"`
			} `yaml:"Properties"`
		} `yaml:"Events"`
		// The table's.
		BillingMode string `yaml:"BillingMode"`
		KeySchema   []struct {
			AttributeName string `yaml:"AttributeName"`
			KeyType       string `yaml:"KeyType"`
		} `yaml:"KeySchema"`
	} `yaml:"Properties"`
}

// samRoute is one route of the HTTP API and the function it invokes.
type samRoute struct {
	Method, Path, Function string
}

// readSAMTemplate parses template.yaml.
func readSAMTemplate(tb testing.TB) *samTemplate {
	tb.Helper()
	raw, err := os.ReadFile(templatePath)
	if err != nil {
		tb.Fatal(err)
	}
	var tpl samTemplate
	if err := yaml.Unmarshal(raw, &tpl); err != nil {
		tb.Fatalf("template.yaml: %v", err)
	}
	return &tpl
}

// functions returns the logical IDs of the template's functions, sorted.
func (tpl *samTemplate) functions() []string {
	var ids []string
	for id, r := range tpl.Resources {
		if r.Type == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// routes returns the HttpApi routes of every function.
func (tpl *samTemplate) routes() []samRoute {
	var out []samRoute
	for _, id := range tpl.functions() {
		for _, ev := range tpl.Resources[id].Properties.Events {
			if ev.Type == "HttpApi" {
				out = append(out, samRoute{Method: strings.ToUpper(ev.Properties.Method), Path: ev.Properties.Path, Function: id})
			}
		}
	}
	slices.SortFunc(out, func(a, b samRoute) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return out
}

// templateNeedTool returns the path of a command the test needs: it skips the test
// when the command is missing, except in CI, where that is a failure.
func templateNeedTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s is not on PATH", name)
		}
		tb.Skipf("%s is not on PATH", name)
	}
	return path
}

// templateMakeEnv is the environment for running make from a test: without the
// flags of an enclosing make (`make test`).
func templateMakeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != "MAKEFLAGS" && name != "MFLAGS" && name != "MAKELEVEL" {
			env = append(env, kv)
		}
	}
	return env
}

// TestTemplateLint: cfn-lint (with the SAM translator) finds no error and
// no warning in template.yaml.
func TestTemplateLint(t *testing.T) {
	cfnLint := templateNeedTool(t, "cfn-lint")
	cmd := exec.Command(cfnLint, "--", filepath.Base(templatePath))
	cmd.Dir = filepath.Dir(templatePath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfn-lint template.yaml: %v\n%s", err, out)
	}
}

// TestTemplateFunctions: the three functions are built from the Makefile,
// share the Lambda settings, and route the API as documented.
func TestTemplateFunctions(t *testing.T) {
	tpl := readSAMTemplate(t)
	if tpl.Transform != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform %q", tpl.Transform)
	}
	if got, want := tpl.functions(), []string{"AdminFunction", "RestFunction", "SessionsFunction"}; !slices.Equal(got, want) {
		t.Fatalf("functions %v, want %v", got, want)
	}
	for _, id := range tpl.functions() {
		if bm := tpl.Resources[id].Metadata.BuildMethod; bm != "makefile" {
			t.Errorf("%s: BuildMethod %q, want makefile", id, bm)
		}
	}
	g := tpl.Globals.Function
	if g.CodeUri != "." || g.Handler != "bootstrap" || g.Runtime != "provided.al2023" || !slices.Equal(g.Architectures, []string{"arm64"}) {
		t.Errorf("Globals.Function: CodeUri %q Handler %q Runtime %q Architectures %v", g.CodeUri, g.Handler, g.Runtime, g.Architectures)
	}
	if v := g.Environment.Variables["WAGO_DYNAMODB_CREATE_TABLE"]; v.Kind != yaml.ScalarNode || v.Value != "false" {
		t.Errorf("WAGO_DYNAMODB_CREATE_TABLE must be \"false\": the stack owns the table")
	}
	for _, name := range []string{"WAGO_REDIS_URL", "WAGO_ADMIN_TOKEN", "WAGO_DYNAMODB_TABLE"} {
		if v, ok := g.Environment.Variables[name]; !ok || v.Tag != "!Ref" {
			t.Errorf("%s must be a !Ref (a parameter or the table), not a literal", name)
		}
	}

	want := []samRoute{
		{"GET", "/session/all", "AdminFunction"},
		{"POST", "/session/connect", "SessionsFunction"},
		{"POST", "/session/delete", "AdminFunction"},
		{"POST", "/session/disconnect", "SessionsFunction"},
		{"POST", "/session/init", "AdminFunction"},
		{"POST", "/session/logout", "SessionsFunction"},
		{"POST", "/session/pair", "SessionsFunction"},
		{"GET", "/session/qr", "SessionsFunction"},
		{"POST", "/session/scanned", "AdminFunction"},
		{"GET", "/session/status", "SessionsFunction"},
		{"ANY", "/{proxy+}", "RestFunction"},
	}
	if got := tpl.routes(); !slices.Equal(got, want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
	for _, id := range tpl.functions() {
		for name, ev := range tpl.Resources[id].Properties.Events {
			if ev.Properties.PayloadFormatVersion != "2.0" {
				t.Errorf("%s.%s: PayloadFormatVersion %q, want 2.0 (httpadapter.NewV2)", id, name, ev.Properties.PayloadFormatVersion)
			}
		}
	}

	var tables int
	for id, r := range tpl.Resources {
		if r.Type != "AWS::DynamoDB::Table" {
			continue
		}
		tables++
		p := r.Properties
		if p.BillingMode != "PAY_PER_REQUEST" || len(p.KeySchema) != 1 || p.KeySchema[0].AttributeName != "pk" || p.KeySchema[0].KeyType != "HASH" {
			t.Errorf("%s: want PAY_PER_REQUEST with hash key pk, got %+v", id, p)
		}
	}
	if tables != 1 {
		t.Errorf("%d DynamoDB tables, want 1", tables)
	}
}

// TestTemplateMakeTargets: every function's build-<LogicalId> target exists
// and builds the Lambda binary into ARTIFACTS_DIR.
func TestTemplateMakeTargets(t *testing.T) {
	mk := templateNeedTool(t, "make")
	for _, id := range readSAMTemplate(t).functions() {
		dir := t.TempDir()
		cmd := exec.Command(mk, "-n", "build-"+id, "ARTIFACTS_DIR="+dir)
		cmd.Dir, cmd.Env = "..", templateMakeEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("make -n build-%s: %v\n%s", id, err, out)
			continue
		}
		for _, want := range []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "-tags lambda.norpc", "-trimpath", "-s -w", "-o " + dir + "/bootstrap"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make -n build-%s does not say %q:\n%s", id, want, out)
			}
		}
	}
}

// TestTemplateBuild builds one function as `sam build` does and checks the
// artifact: a stripped linux/arm64 bootstrap of at most 25 MB.
func TestTemplateBuild(t *testing.T) {
	mk := templateNeedTool(t, "make")
	dir := t.TempDir()
	cmd := exec.Command(mk, "build-SessionsFunction", "ARTIFACTS_DIR="+dir)
	cmd.Dir, cmd.Env = "..", templateMakeEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build-SessionsFunction: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "bootstrap")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Errorf("bootstrap is not executable: %v", fi.Mode())
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		t.Errorf("bootstrap is %v/%v, want linux arm64", f.OSABI, f.Machine)
	}
	if f.Section(".symtab") != nil {
		t.Error("bootstrap has a symbol table: not stripped (-ldflags='-s -w')")
	}
	if _, err := f.DynamicSymbols(); err == nil {
		t.Error("bootstrap is dynamically linked: want CGO_ENABLED=0")
	}
	t.Logf("bootstrap (linux/arm64, stripped): %d bytes (%.1f MiB), limit %d MiB", fi.Size(), float64(fi.Size())/(1<<20), maxBootstrapSize>>20)
	if fi.Size() > maxBootstrapSize {
		t.Errorf("bootstrap is %d bytes, over %d", fi.Size(), maxBootstrapSize)
	}
}
