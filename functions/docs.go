package functions

import (
	"encoding/json"
	"html"
	"net/http"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// GET /docs: a page that lists the operations of openapi.yaml, rendered
// here from the embedded document once, at the first request. It loads
// nothing from elsewhere: no script, style sheet or font of a third party.

// docsPage is the rendered page, or the error that kept it from rendering.
var docsPage = sync.OnceValues(renderDocs)

func (a *API) serveDocs(w http.ResponseWriter, r *http.Request) {
	page, err := docsPage()
	if err != nil {
		Error(w, r, a.log, err)
		return
	}
	h := w.Header()
	h["Content-Type"] = htmlContentType
	h["Content-Security-Policy"] = docsCSP
	w.Write(page)
}

var (
	htmlContentType = []string{"text/html; charset=utf-8"}
	// docsCSP lets the page use its own inline style and nothing else.
	docsCSP = []string{"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"}
)

// docOperation is one operation on the page.
type docOperation struct {
	ID, Method, Path, Summary, Description string
	Auth                                   string
	Request, Answer                        string
	Statuses                               string
}

// docSection is a tag's operations.
type docSection struct {
	Tag, Description string
	Operations       []docOperation
}

var docsMethods = []string{"get", "head", "post", "put", "delete"}

func renderDocs() ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(openAPIDoc, &root); err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := root.Decode(&doc); err != nil {
		return nil, err
	}
	info, _ := doc["info"].(map[string]any)
	sections := map[string]*docSection{}
	var order []string
	for _, t := range list(doc["tags"]) {
		tag, _ := t.(map[string]any)
		name, _ := tag["name"].(string)
		desc, _ := tag["description"].(string)
		sections[name] = &docSection{Tag: name, Description: desc}
		order = append(order, name)
	}
	// Paths in the document's order: walk the node, not the map.
	for _, path := range mapKeys(root.Content[0], "paths") {
		item, _ := dig(doc, "paths", path).(map[string]any)
		for _, method := range docsMethods {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			tag := "other"
			if tags := list(op["tags"]); len(tags) > 0 {
				tag, _ = tags[0].(string)
			}
			s := sections[tag]
			if s == nil {
				s = &docSection{Tag: tag}
				sections[tag] = s
				order = append(order, tag)
			}
			o := docOperation{
				Method: strings.ToUpper(method), Path: path,
				Summary: str(op["summary"]), Description: str(op["description"]),
				Auth: auth(op["security"]),
			}
			o.ID = o.Method + "-" + strings.NewReplacer("/", "-", "{", "", "}", "").Replace(path)
			o.Request = example(doc, dig(resolve(doc, op["requestBody"]), "content", "application/json"))
			responses, _ := op["responses"].(map[string]any)
			codes := make([]string, 0, len(responses))
			for code := range responses {
				codes = append(codes, code)
			}
			sort.Strings(codes)
			o.Statuses = strings.Join(codes, ", ")
			for _, ct := range []string{"application/json", "application/yaml", "text/html"} {
				if media := dig(resolve(doc, responses["200"]), "content", ct); media != nil {
					if o.Answer = example(doc, media); o.Answer == "" {
						o.Answer = ct
					}
					break
				}
			}
			s.Operations = append(s.Operations, o)
		}
	}
	// What wago posts to a token's webhook (the document's webhooks).
	hooks := &docSection{Tag: "deliveries", Description: "What wago posts to a token's webhook URL."}
	for _, name := range mapKeys(root.Content[0], "webhooks") {
		op, _ := dig(doc, "webhooks", name, "post").(map[string]any)
		o := docOperation{ID: "webhook-" + name, Method: "POST", Path: "your webhook URL", Summary: str(op["summary"]), Description: str(op["description"]), Auth: "webhook-signature"}
		o.Request = example(doc, dig(op, "requestBody", "content", "application/json"))
		hooks.Operations = append(hooks.Operations, o)
	}
	sections[hooks.Tag] = hooks
	order = append(order, hooks.Tag)

	var out []docSection
	for _, tag := range order {
		if s := sections[tag]; len(s.Operations) > 0 {
			out = append(out, *s)
		}
	}
	var b strings.Builder
	writeDocs(&b, str(info["title"]), str(info["summary"]), str(info["description"]), out)
	return []byte(b.String()), nil
}

// mapKeys returns the keys, in order, of the mapping under key in a
// mapping node.
func mapKeys(n *yaml.Node, key string) []string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			var keys []string
			v := n.Content[i+1]
			for j := 0; j+1 < len(v.Content); j += 2 {
				keys = append(keys, v.Content[j].Value)
			}
			return keys
		}
	}
	return nil
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func list(v any) []any { l, _ := v.([]any); return l }

func str(v any) string { s, _ := v.(string); return s }

// resolve follows a local $ref ("#/components/...").
func resolve(doc map[string]any, v any) any {
	for range 8 {
		ref, ok := dig(v, "$ref").(string)
		if !ok {
			return v
		}
		v = dig(doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
	return v
}

// example renders a media type's example (or its first examples entry) as
// indented JSON.
func example(doc map[string]any, media any) string {
	ex := dig(media, "example")
	if ex == nil {
		if all, ok := dig(media, "examples").(map[string]any); ok {
			names := make([]string, 0, len(all))
			for name := range all {
				names = append(names, name)
			}
			sort.Strings(names)
			if len(names) > 0 {
				ex = dig(resolve(doc, all[names[0]]), "value")
			}
		}
	}
	if ex == nil {
		return ""
	}
	b, err := json.MarshalIndent(ex, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// auth names the credentials an operation's security asks for.
func auth(security any) string {
	l, ok := security.([]any)
	if !ok {
		return ""
	}
	var alts []string
	for _, req := range l {
		m, _ := req.(map[string]any)
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) > 0 {
			alts = append(alts, strings.Join(names, " + "))
		}
	}
	if len(alts) == 0 {
		return "none"
	}
	return strings.Join(alts, " or ")
}

// writeDocs writes the page. It escapes by hand with html.EscapeString:
// html/template (through text/template's reflection) would keep every
// method of every type in the binary, some 10 MB more in the Lambda build.
func writeDocs(b *strings.Builder, title, summary, description string, sections []docSection) {
	e := html.EscapeString
	b.WriteString(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + e(title) + ` API</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0 } h2 { border-bottom: 1px solid #ccc; margin-top: 2.5rem }
pre, code { font: 13px/1.4 ui-monospace, monospace; } pre { background: #f5f5f5; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
.op { border: 1px solid #ddd; border-radius: 4px; margin: .8rem 0; padding: .2rem .8rem .6rem; }
.m { display: inline-block; min-width: 4.5rem; font-weight: bold; } .auth, .st { color: #555; font-size: 13px }
nav a { margin-right: .8rem } details summary { cursor: pointer; color: #555 }
</style>
</head>
<body>
<h1>` + e(title) + ` API</h1>
<p>` + e(summary) + ` The machine-readable document is <a href="openapi.yaml">openapi.yaml</a> (OpenAPI 3.1).</p>
<details><summary>About the API</summary><pre>` + e(description) + `</pre></details>
<nav>`)
	for _, s := range sections {
		b.WriteString(`<a href="#` + e(s.Tag) + `">` + e(s.Tag) + `</a>`)
	}
	b.WriteString("</nav>\n")
	for _, s := range sections {
		b.WriteString(`<h2 id="` + e(s.Tag) + `">` + e(s.Tag) + "</h2>\n")
		if s.Description != "" {
			b.WriteString("<p>" + e(s.Description) + "</p>\n")
		}
		for _, o := range s.Operations {
			b.WriteString(`<div class="op" id="` + e(o.ID) + `">
<p><span class="m">` + e(o.Method) + `</span><code>` + e(o.Path) + `</code> — ` + e(o.Summary) + `<br>
<span class="auth">auth: ` + e(o.Auth) + `</span> · <span class="st">answers: ` + e(o.Statuses) + "</span></p>\n")
			if o.Description != "" {
				b.WriteString("<p>" + e(o.Description) + "</p>\n")
			}
			if o.Request != "" {
				b.WriteString("<details><summary>request</summary><pre>" + e(o.Request) + "</pre></details>\n")
			}
			if o.Answer != "" {
				b.WriteString("<details><summary>answer</summary><pre>" + e(o.Answer) + "</pre></details>\n")
			}
			b.WriteString("</div>\n")
		}
	}
	b.WriteString("</body>\n</html>\n")
}
