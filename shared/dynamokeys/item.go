package dynamokeys

import "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

func boolean(v bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: v} }
