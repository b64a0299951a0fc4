package infinitycdk

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// testEnv is a concrete account and region (a nil environment leaves
// them as pseudo parameters).
var testEnv = &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")}

// fakeBootstrap writes a stand-in bootstrap: the construct only stages it.
func fakeBootstrap(t *testing.T) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "bootstrap", "#!/bin/sh\n# a stand-in for the bootstrap\n")
}

// writeFile writes content to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// synthed is one synthesized stack with an agent "Agent".
type synthed struct {
	stack awscdk.Stack
	agent *InfinityAgent
	tpl   assertions.Template
	// json is the template as plain values.
	json map[string]any
}

// synth builds a stack with one agent, configured by edit, under the
// AwsSolutions checks, and synthesizes it.
func synth(t *testing.T, env *awscdk.Environment, edit func(stack awscdk.Stack, p *InfinityAgentProps)) *synthed {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Test"), &awscdk.StackProps{Env: env})
	props := &InfinityAgentProps{BootstrapPath: fakeBootstrap(t)}
	if edit != nil {
		edit(stack, props)
	}
	s := &synthed{stack: stack, agent: NewInfinityAgent(stack, "Agent", props)}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Reports: jsii.Bool(false)}), nil)
	s.tpl = assertions.Template_FromStack(stack, nil)
	b, err := json.Marshal(s.tpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s.json); err != nil {
		t.Fatal(err)
	}
	return s
}

// assert runs an assertions call, turning its panic (how jsii reports a
// failed assertion) into a test error.
func assert(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", what, r)
		}
	}()
	f()
}

// resources returns the template's resources of type typ by logical id.
func (s *synthed) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.json["Resources"].(map[string]any) {
		r := r.(map[string]any)
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

// props returns the Properties of resource id.
func (s *synthed) props(id string) map[string]any {
	r := s.json["Resources"].(map[string]any)[id].(map[string]any)
	p, _ := r["Properties"].(map[string]any)
	return p
}

// lid returns the logical id of construct c's CloudFormation resource
// (c itself, or its default child).
func (s *synthed) lid(t *testing.T, c constructs.IConstruct) string {
	t.Helper()
	if el, ok := c.(awscdk.CfnElement); ok {
		return *s.stack.GetLogicalId(el)
	}
	el, ok := c.Node().DefaultChild().(awscdk.CfnElement)
	if !ok {
		t.Fatalf("%s has no CloudFormation resource", *c.Node().Path())
	}
	return *s.stack.GetLogicalId(el)
}

// functionEnv returns the environment of the function with INFINITY_ROLE
// role.
func (s *synthed) functionEnv(t *testing.T, role string) map[string]any {
	t.Helper()
	env := s.props(s.functionID(t, role))["Environment"].(map[string]any)
	return env["Variables"].(map[string]any)
}

// functionID returns the logical id of the function with INFINITY_ROLE role.
func (s *synthed) functionID(t *testing.T, role string) string {
	t.Helper()
	for id, r := range s.resources("AWS::Lambda::Function") {
		env, _ := r["Properties"].(map[string]any)["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if vars[envRole] == role {
			return id
		}
	}
	t.Fatalf("no function with %s=%s", envRole, role)
	return ""
}

// getAtt and ref are the template's intrinsic functions, for comparisons.
func getAtt(id, attr string) any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }
func ref(id string) any          { return map[string]any{"Ref": id} }

// same reports whether two template values are equal.
func same(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// statement is one IAM policy statement of the template.
type statement struct {
	policy    string
	roles     []string
	actions   []string
	resources []any
	raw       map[string]any
}

// statements returns every statement of the template's IAM policies.
func (s *synthed) statements() []statement {
	var out []statement
	for id, r := range s.resources("AWS::IAM::Policy") {
		p := r["Properties"].(map[string]any)
		var roles []string
		for _, role := range list(p["Roles"]) {
			roles = append(roles, role.(map[string]any)["Ref"].(string))
		}
		for _, st := range list(p["PolicyDocument"].(map[string]any)["Statement"]) {
			st := st.(map[string]any)
			var actions []string
			for _, a := range list(st["Action"]) {
				actions = append(actions, a.(string))
			}
			out = append(out, statement{policy: id, roles: roles, actions: actions, resources: list(st["Resource"]), raw: st})
		}
	}
	return out
}

// actionsOf returns the sorted actions the policies grant to role.
func (s *synthed) actionsOf(role string) []string {
	set := map[string]bool{}
	for _, st := range s.statements() {
		for _, r := range st.roles {
			if r == role {
				for _, a := range st.actions {
					set[a] = true
				}
			}
		}
	}
	var out []string
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// roleOf returns the logical id of the role of the function id.
func (s *synthed) roleOf(fn string) string {
	return s.props(fn)["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
}

// list makes a single value or a list a list.
func list(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// render writes a template value as text with pseudo parameters and
// tokens in angle brackets, e.g. arn:<AWS::Partition>:sqs:...
func render(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if r, ok := v["Ref"].(string); ok {
			return "<" + r + ">"
		}
		if g, ok := v["Fn::GetAtt"].([]any); ok {
			return fmt.Sprintf("<%v.%v>", g[0], g[1])
		}
		if j, ok := v["Fn::Join"].([]any); ok {
			var parts []string
			for _, p := range j[1].([]any) {
				parts = append(parts, render(p))
			}
			return strings.Join(parts, j[0].(string))
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}
