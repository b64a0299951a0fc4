package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableClient is the part of *dynamodb.Client that CreateTable uses.
type TableClient interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DescribeTimeToLive(ctx context.Context, in *dynamodb.DescribeTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTimeToLiveOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// tableWait bounds how long CreateTable waits for the table to be active.
const tableWait = 5 * time.Minute

// CreateTable creates the store's table (on-demand capacity), waits until it
// is active and enables TTL on the processed marks' ttl attribute. A table
// that exists already is fine if its key schema is the store's; TTL already
// enabled on ttl is fine too. It is meant for tests and local harnesses;
// deployments create the table in their stack.
func CreateTable(ctx context.Context, client TableClient, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 10*time.Second
	})
	desc, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, tableWait)
	if err != nil {
		return fmt.Errorf("create table %s: wait until active: %w", table, err)
	}
	if err := checkKeySchema(desc.Table); err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if err != nil {
		return fmt.Errorf("create table %s: describe ttl: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != attrTTL {
				return fmt.Errorf("create table %s: ttl is on attribute %q, the store writes %q", table, name, attrTTL)
			}
			return nil
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("create table %s: enable ttl: %w", table, err)
	}
	return nil
}

// checkKeySchema fails unless the table is keyed by pk (hash) and sk
// (range), both strings.
func checkKeySchema(t *types.TableDescription) error {
	if t == nil {
		return errors.New("no table description")
	}
	want := map[string]types.KeyType{attrPK: types.KeyTypeHash, attrSK: types.KeyTypeRange}
	if len(t.KeySchema) != len(want) {
		return fmt.Errorf("key schema has %d keys, want %s (hash) and %s (range)", len(t.KeySchema), attrPK, attrSK)
	}
	for _, k := range t.KeySchema {
		if want[aws.ToString(k.AttributeName)] != k.KeyType {
			return fmt.Errorf("key %s is %s, want %s (hash) and %s (range)", aws.ToString(k.AttributeName), k.KeyType, attrPK, attrSK)
		}
	}
	for _, a := range t.AttributeDefinitions {
		if _, isKey := want[aws.ToString(a.AttributeName)]; isKey && a.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Errorf("key %s has type %s, want S", aws.ToString(a.AttributeName), a.AttributeType)
		}
	}
	return nil
}
