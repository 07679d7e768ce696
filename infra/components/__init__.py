"""One ComponentResource per module, each named for the concept it provisions."""

from infra.components.audit_log_bucket import AuditLogBucket, AuditLogBucketArgs
from infra.components.flag_store import FlagStore, FlagStoreArgs
from infra.components.lambda_code import LambdaCode, LambdaCodeArgs
from infra.components.log_key import LogEncryptionKey, LogEncryptionKeyArgs
from infra.components.model_gateway import ModelGateway, ModelGatewayArgs
from infra.components.raw_invocation_logs import RawInvocationLogs, RawInvocationLogsArgs
from infra.components.redaction_function import RedactionFunction, RedactionFunctionArgs
from infra.components.scheduled_reconcile import ScheduledReconcile, ScheduledReconcileArgs
from infra.components.sso_access import SsoAccess, SsoAccessArgs

__all__ = [
    "AuditLogBucket",
    "AuditLogBucketArgs",
    "FlagStore",
    "FlagStoreArgs",
    "LambdaCode",
    "LambdaCodeArgs",
    "LogEncryptionKey",
    "LogEncryptionKeyArgs",
    "ModelGateway",
    "ModelGatewayArgs",
    "RawInvocationLogs",
    "RawInvocationLogsArgs",
    "RedactionFunction",
    "RedactionFunctionArgs",
    "ScheduledReconcile",
    "ScheduledReconcileArgs",
    "SsoAccess",
    "SsoAccessArgs",
]
