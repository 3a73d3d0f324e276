#!/usr/bin/env python3
"""Drives latchkey with Google's grpcio, with stubs generated from proto/ by grpcio-tools at run time.

Usage: grpcio_client.py GRPC_ADDR PROTO_DIR USERNAME PASSWORD

Logs in, introspects the access token, then logs in with a wrong password, and prints what it saw as
JSON (never the tokens themselves). Exits 1 if a call fails unexpectedly.
"""

import importlib
import json
import sys
import tempfile

try:
    import grpc
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status
    from grpc_tools import protoc
except ImportError as missing:
    print(f"missing peer: {missing} (pip install -r tests/peers/requirements.txt)", file=sys.stderr)
    sys.exit(3)


def generate_stubs(proto_dir: str, out_dir: str):
    args = [
        "protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"{proto_dir}/latchkey/v1/auth.proto",
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("grpcio-tools could not generate stubs from the protos")
    sys.path.insert(0, out_dir)
    return (
        importlib.import_module("latchkey.v1.auth_pb2"),
        importlib.import_module("latchkey.v1.auth_pb2_grpc"),
    )


def error_info(error: grpc.RpcError) -> dict:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return {"reason": info.reason, "domain": info.domain}
    return {}


def main() -> int:
    addr, proto_dir, username, password = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as out_dir:
        pb, pb_grpc = generate_stubs(proto_dir, out_dir)
        with grpc.insecure_channel(addr) as channel:
            stub = pb_grpc.AuthServiceStub(channel)
            tokens = stub.Login(
                pb.LoginRequest(username=username, password=password, device="grpcio"),
                timeout=10,
            )
            seen = stub.Introspect(pb.IntrospectRequest(token=tokens.access_token), timeout=10)
            try:
                stub.Login(pb.LoginRequest(username=username, password=password + "!"), timeout=10)
                wrong = {"code": "OK"}
            except grpc.RpcError as error:
                wrong = {"code": error.code().name, **error_info(error)}
    print(
        json.dumps(
            {
                "login": {
                    "token_type": tokens.token_type,
                    "session_id": tokens.session_id,
                    "scope": tokens.scope,
                    "expires_in": tokens.expires_in,
                    "refresh_prefix": tokens.refresh_token[:6],
                },
                "introspect": {
                    "active": seen.active,
                    "sub": seen.sub,
                    "username": seen.username,
                    "session_id": seen.session_id,
                    "token_type": seen.token_type,
                },
                "wrong_password": wrong,
            }
        )
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as error:
        print(f"unexpected gRPC error: {error.code().name}: {error.details()}", file=sys.stderr)
        sys.exit(1)
