"""Kubernetes manifests checked against the API's own models (kubernetes_asyncio, installed with
prefect-kubernetes), with no cluster: every key a manifest sets must be a field of the object it sits
in, so a misspelt `volumeMount` or a `nodeSelector` one level too deep is caught here, where a
server would drop it with a warning or refuse the object."""
from __future__ import annotations

import re

from kubernetes_asyncio.client import models

KINDS = {("v1", "Namespace"): "V1Namespace", ("v1", "ConfigMap"): "V1ConfigMap",
         ("v1", "Secret"): "V1Secret", ("v1", "PersistentVolumeClaim"): "V1PersistentVolumeClaim",
         ("v1", "ServiceAccount"): "V1ServiceAccount", ("batch/v1", "Job"): "V1Job",
         ("apps/v1", "Deployment"): "V1Deployment", ("rbac.authorization.k8s.io/v1", "Role"): "V1Role",
         ("rbac.authorization.k8s.io/v1", "RoleBinding"): "V1RoleBinding"}
PRIMITIVES = {"str", "int", "bool", "float", "object", "datetime", "date"}


def model_name(manifest: dict) -> str:
    return KINDS[(manifest["apiVersion"], manifest["kind"])]


def unknown_fields(value, type_name: str, path: str = "") -> list[str]:
    """Paths in `value` that are no field of the Kubernetes model `type_name` (e.g. "V1Job")."""
    if type_name in PRIMITIVES or value is None:
        return []
    if match := re.fullmatch(r"list\[(.+)\]", type_name):
        return [bad for i, item in enumerate(value) for bad in unknown_fields(item, match[1], f"{path}[{i}]")]
    if match := re.fullmatch(r"dict\(str, (.+)\)", type_name):
        return [bad for key, item in value.items() for bad in unknown_fields(item, match[1], f"{path}.{key}")]
    model = getattr(models, type_name)
    fields = {json_key: model.openapi_types[attr] for attr, json_key in model.attribute_map.items()}
    found = []
    for key, item in value.items():
        if key in fields:
            found += unknown_fields(item, fields[key], f"{path}.{key}")
        else:
            found.append(f"{path}.{key}")
    return found
