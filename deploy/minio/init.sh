#!/bin/sh
# One-shot MinIO setup for the raw log (run by the minio-init service with the minio/mc image):
# bucket, lifecycle rule (deploy/minio/lifecycle.json), and a least-privilege service user for
# pos-ingest so the services never hold the MinIO root credentials. Idempotent: safe on every `up`.
set -eu
: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${S3_BUCKET:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"

until mc alias set local http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
  echo "waiting for minio"; sleep 1
done

mc mb --ignore-existing "local/$S3_BUCKET"
mc anonymous set none "local/$S3_BUCKET"
mc ilm import "local/$S3_BUCKET" < /minio/lifecycle.json
mc ilm ls "local/$S3_BUCKET"

# Policy: read/write objects of the raw bucket only.
cat > /tmp/pos-ingest-policy.json <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET"]},
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
     "Resource": ["arn:aws:s3:::$S3_BUCKET/*"]}
  ]
}
POLICY
mc admin policy create local pos-ingest-raw /tmp/pos-ingest-policy.json
mc admin user add local "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"
mc admin policy attach local pos-ingest-raw --user "$AWS_ACCESS_KEY_ID" 2>/dev/null || true
echo "minio ready: bucket $S3_BUCKET"
