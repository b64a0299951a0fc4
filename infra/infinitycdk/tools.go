package infinitycdk

import (
	"fmt"
	"net/url"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"
)

// ToolSet is a tool server the deployment adds to the agent file's
// (INFINITY_TOOLS): a RapToolSet or an McpToolSet.
type ToolSet interface {
	// bind grants the agent what the server needs and returns its entry.
	bind(a *InfinityAgent) toolEntry
}

// toolEntry is one server of INFINITY_TOOLS.
type toolEntry struct {
	rap *string                // a RAP server's base URL
	mcp map[string]interface{} // an MCP server: url, headers_secret_arn
}

// RapToolSet is a RAP tool server: an external base URL, or a Lambda
// function that gets an IAM-auth Function URL the agent may invoke (the
// agent signs its requests with SigV4).
type RapToolSet struct {
	url string
	fn  awslambda.IFunction
	// FunctionURL is the tool server function's Function URL, made when
	// the set is first added to an agent (nil for an external URL).
	FunctionURL awslambda.FunctionUrl
}

// RapToolSetFromURL is the RAP server at base URL u (http or https).
func RapToolSetFromURL(u string) *RapToolSet { return &RapToolSet{url: u} }

// RapToolSetFromFunction is the RAP server fn serves; fn must not have a
// Function URL yet (the set adds one, auth AWS_IAM).
func RapToolSetFromFunction(fn awslambda.IFunction) *RapToolSet { return &RapToolSet{fn: fn} }

func (r *RapToolSet) bind(a *InfinityAgent) toolEntry {
	if r.fn == nil {
		a.checkURL("RapToolSet", r.url)
		return toolEntry{rap: jsii.String(r.url)}
	}
	if r.FunctionURL == nil {
		r.FunctionURL = r.fn.AddFunctionUrl(&awslambda.FunctionUrlOptions{AuthType: awslambda.FunctionUrlAuthType_AWS_IAM})
	}
	// lambda:InvokeFunctionUrl, and lambda:InvokeFunction through the URL
	// (function URLs made since October 2025 need both).
	r.FunctionURL.GrantInvokeUrl(a.AgentFunction)
	return toolEntry{rap: r.FunctionURL.Url()}
}

// McpToolSet is a remote MCP server (streamable HTTP). Its request
// headers, credentials usually, come from a Secrets Manager secret whose
// SecretString is a JSON object of header name to value. The bootstrap
// must be built with -tags mcp.
type McpToolSet struct {
	url     string
	headers awssecretsmanager.ISecret
}

// NewMcpToolSet is the MCP server at u; headers may be nil.
func NewMcpToolSet(u string, headers awssecretsmanager.ISecret) *McpToolSet {
	return &McpToolSet{url: u, headers: headers}
}

func (m *McpToolSet) bind(a *InfinityAgent) toolEntry {
	a.checkURL("McpToolSet", m.url)
	awscdk.Annotations_Of(a.Construct).AddInfo(jsii.String("McpToolSet " + m.url + ": build the bootstrap with -tags \"lambda.norpc mcp\""))
	e := toolEntry{mcp: map[string]interface{}{"url": m.url}}
	if m.headers != nil {
		e.mcp["headers_secret_arn"] = m.headers.SecretArn()
		a.AgentFunction.AddToRolePolicy(allow([]string{"secretsmanager:GetSecretValue"}, secretARNForPolicy(m.headers)))
		if key := m.headers.EncryptionKey(); key != nil {
			key.GrantDecrypt(a.AgentFunction)
		}
	}
	return e
}

// secretARNForPolicy is the secret's full ARN, or, for a secret imported
// by name, its ARN with the six random characters Secrets Manager appends.
func secretARNForPolicy(s awssecretsmanager.ISecret) *string {
	if full := s.SecretFullArn(); full != nil {
		return full
	}
	return jsii.String(*s.SecretArn() + "-??????")
}

// checkURL reports a concrete URL that is not absolute http(s).
func (a *InfinityAgent) checkURL(what, u string) {
	if *awscdk.Token_IsUnresolved(u) {
		return
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		a.problems.add(fmt.Sprintf("%s: %q is not an http(s) URL", what, u))
	}
}

// AddToolSet adds a tool server to the agent's configuration and grants
// the agent function what it needs to reach it.
func (a *InfinityAgent) AddToolSet(t ToolSet) {
	a.tools = append(a.tools, t.bind(a))
	var rap []*string
	var mcp []interface{}
	for _, e := range a.tools {
		if e.rap != nil {
			rap = append(rap, e.rap)
		}
		if e.mcp != nil {
			mcp = append(mcp, e.mcp)
		}
	}
	tools := map[string]interface{}{}
	if len(rap) > 0 {
		tools["rap"] = rap
	}
	if len(mcp) > 0 {
		tools["mcp"] = mcp
	}
	a.AgentFunction.AddEnvironment(jsii.String(envTools), awscdk.Stack_Of(a.Construct).ToJsonString(tools, nil), nil)
	a.configureRAP()
}

// configureRAP gives the agent function the RAP key and the receiver's
// URL once it has RAP servers (its agent file's or a RapToolSet).
func (a *InfinityAgent) configureRAP() {
	rap := a.spec.rap
	for _, e := range a.tools {
		rap = rap || e.rap != nil
	}
	if !rap || a.rapConfigured {
		return
	}
	a.rapConfigured = true
	a.AgentFunction.AddEnvironment(jsii.String(envRAPKeySecret), a.RAPKey.SecretArn(), nil)
	a.AgentFunction.AddEnvironment(jsii.String(envRAPCallbackURL), a.ReceiverURL.Url(), nil)
	a.AgentFunction.AddToRolePolicy(allow([]string{"secretsmanager:GetSecretValue"}, a.RAPKey.SecretArn()))
}
