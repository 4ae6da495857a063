package pipeline

import (
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
)

// parseTemplate parses one of a task's templates, named by its field in the file, and
// records the document fields it uses (into fields, field → template) and the tasks
// whose outputs it uses (into deps).
func parseTemplate(field, text string, fields map[string]string, deps map[string]bool) (*template.Template, error) {
	tmpl, err := template.New(field).Option("missingkey=error").Parse(text)
	if err != nil {
		// text/template's parse errors have no type: only their text says where.
		msg := strings.TrimPrefix(err.Error(), "template: ")
		msg = strings.TrimPrefix(msg, field+":")
		return nil, &SpecError{Field: field, Msg: "template: line " + msg}
	}
	for _, t := range tmpl.Templates() {
		if t.Tree != nil {
			walk(t.Root, 0, func(idents []string) {
				if len(idents) == 0 {
					return
				}
				if idents[0] == TasksKey {
					if len(idents) > 1 {
						deps[idents[1]] = true
					}
					return
				}
				if _, ok := fields[idents[0]]; !ok {
					fields[idents[0]] = field
				}
			})
		}
	}
	return tmpl, nil
}

// walk calls fn with the field chain of every reference to the template's top-level data
// ({{.text}}, {{$.text}}); inside range and with, where dot is something else, only $
// references count.
func walk(n parse.Node, depth int, fn func([]string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walk(c, depth, fn)
		}
	case *parse.ActionNode:
		walk(n.Pipe, depth, fn)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walk(c, depth, fn)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walk(a, depth, fn)
		}
	case *parse.FieldNode:
		if depth == 0 {
			fn(n.Ident)
		}
	case *parse.ChainNode:
		walk(n.Node, depth, fn)
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			fn(n.Ident[1:])
		}
	case *parse.IfNode:
		walk(n.Pipe, depth, fn)
		walk(n.List, depth, fn)
		walk(n.ElseList, depth, fn)
	case *parse.RangeNode:
		walk(n.Pipe, depth, fn)
		walk(n.List, depth+1, fn)
		walk(n.ElseList, depth, fn)
	case *parse.WithNode:
		walk(n.Pipe, depth, fn)
		walk(n.List, depth+1, fn)
		walk(n.ElseList, depth, fn)
	case *parse.TemplateNode:
		walk(n.Pipe, depth, fn)
	}
}

// execute renders tmpl over data.
func execute(tmpl *template.Template, data map[string]any) (string, error) {
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "template: ") {
			msg = msg[i+2:]
		}
		return "", fmt.Errorf("%s: %s", tmpl.Name(), msg)
	}
	return b.String(), nil
}
