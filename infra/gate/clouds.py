"""Which Azure cloud an ARM endpoint belongs to: its Entra authority and Log Analytics endpoint.

A sovereign cloud has its own login host and its own Log Analytics API; a token from the public
authority is refused there, and a query sent to ``api.loganalytics.io`` reads the wrong cloud. So
everything the gate contacts follows the stack's ``armEndpoint``. Hosts are the ones azure-identity
(``AzureAuthorityHosts``) and azure-monitor-query document. An endpoint outside this table (a
private test server) takes the public cloud's values unless ``AZURE_AUTHORITY_HOST`` says
otherwise (azure-identity's own variable, read at the edge in :mod:`infra.gate.credentials`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["CLOUDS", "Cloud", "cloud_of"]


@dataclass(frozen=True)
class Cloud:
    """One Azure cloud: the endpoints the gate needs, all https URLs without a trailing slash."""

    name: str
    arm_endpoint: str
    authority: str
    logs_endpoint: str

    @property
    def arm_scope(self) -> str:
        return self.arm_endpoint + "/.default"

    @property
    def logs_scope(self) -> str:
        return self.logs_endpoint + "/.default"


CLOUDS: tuple[Cloud, ...] = (
    Cloud("AzureCloud", "https://management.azure.com", "https://login.microsoftonline.com",
          "https://api.loganalytics.io"),
    Cloud("AzureChinaCloud", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn",
          "https://api.loganalytics.azure.cn"),
    Cloud("AzureUSGovernment", "https://management.usgovcloudapi.net",
          "https://login.microsoftonline.us", "https://api.loganalytics.us"),
)


def cloud_of(arm_endpoint: str) -> Cloud:
    """The cloud whose ARM host ``arm_endpoint`` names; the public cloud for any other host."""
    host = (urlsplit(arm_endpoint).hostname or "").lower()
    for cloud in CLOUDS:
        if urlsplit(cloud.arm_endpoint).hostname == host:
            return cloud
    public = CLOUDS[0]
    return Cloud("custom", arm_endpoint.rstrip("/"), public.authority, public.logs_endpoint)
