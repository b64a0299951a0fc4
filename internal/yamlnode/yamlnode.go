// Package yamlnode holds what the YAML readers (agent files, price tables)
// share about goccy/go-yaml's AST.
package yamlnode

import "github.com/goccy/go-yaml/ast"

// Unwrap returns the node an anchor or a tag (&a, !!str) stands on, through
// any number of them.
func Unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

// KeyName is a mapping key's text: the string of a string key, else its
// token's value.
func KeyName(k ast.MapKeyNode) string {
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return k.String()
}
