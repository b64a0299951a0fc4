package toolbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MCP returns the toolbox's MCP server (streamable HTTP), which `infinity
// tools serve` mounts at /mcp. MCP tools are synchronous: the runtime calls
// them inside the slice and waits for the answer. Its tools:
//
//   - word_count {text}: the words, lines and characters of a text;
//   - convert_temperature {value, from}: Celsius to Fahrenheit ("C") or
//     back ("F").
func MCP() http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "toolbox", Version: "v1.0.0"}, nil)
	mcp.AddTool(srv, &mcp.Tool{Name: "word_count", Description: "Count the words, lines and characters of a text."},
		func(_ context.Context, _ *mcp.CallToolRequest, in wordCountArgs) (*mcp.CallToolResult, any, error) {
			lines := strings.Count(in.Text, "\n")
			if in.Text != "" && !strings.HasSuffix(in.Text, "\n") {
				lines++
			}
			return text(fmt.Sprintf("%d words, %d lines, %d characters", len(strings.Fields(in.Text)), lines, len([]rune(in.Text)))), nil, nil
		})
	mcp.AddTool(srv, &mcp.Tool{Name: "convert_temperature", Description: "Convert a temperature between Celsius (from C) and Fahrenheit (from F)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in convertArgs) (*mcp.CallToolResult, any, error) {
			switch strings.ToUpper(in.From) {
			case "C":
				return text(fmt.Sprintf("%g °C is %.1f °F", in.Value, in.Value*9/5+32)), nil, nil
			case "F":
				return text(fmt.Sprintf("%g °F is %.1f °C", in.Value, (in.Value-32)*5/9)), nil, nil
			}
			res := text(fmt.Sprintf("from must be C or F, not %q", in.From))
			res.IsError = true
			return res, nil, nil
		})
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
}

type wordCountArgs struct {
	Text string `json:"text" jsonschema:"the text to count"`
}

type convertArgs struct {
	Value float64 `json:"value" jsonschema:"the temperature"`
	From  string  `json:"from" jsonschema:"its unit: C or F"`
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
