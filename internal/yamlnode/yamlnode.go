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
