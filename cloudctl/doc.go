// Package cloudctl is the client side of the cloud mode: what the
// `infinity cloud` commands do against a deployed stack (or the laptop
// stack of `infinity cloud-local`).
//
// A Config says where the deployment is: FromStack reads a CloudFormation
// stack's outputs (those of the InfinityAgent construct, named
// <agent><suffix>, see the Output* constants), FromEnv the INFINITY_*
// variables the functions run with. Open makes a Client of it with the AWS
// SDK's configuration (any credential source; AWS_ENDPOINT_URL_* honoured)
// and, when a database is configured, a pool on the conversation store
// (Aurora DSQL with an IAM token, or a PostgreSQL URL).
//
// The Client starts threads and sends user input through the FIFO input
// queue (Send), lists threads and trees with their status from the store
// (Threads, Tree), writes a tree's transcript in causal order and follows
// it (Logs: the store is the source, the output queue a wake-up), and
// lists and redrives the input queue's dead-letter queue (ListDeadLetters,
// Redrive).
//
// The store has no query that lists threads, so the listing reads
// persistence/dsql's threads table itself (Client.List).
package cloudctl
