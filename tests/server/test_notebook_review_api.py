"""POST /rubberduck/api/review/notebook through a real server: cross-cell findings for the
cells a client sends, and clear refusals for bad bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


async def _review(jp_fetch: Any, body: Any) -> Any:
    return await jp_fetch(
        "rubberduck", "api", "review", "notebook", method="POST", body=json.dumps(body)
    )


async def test_the_notebooks_cells_get_cross_cell_findings(jp_fetch: Any) -> None:
    cells = [
        {"index": 0, "source": "import pandas as pd", "execution_count": 1},
        {"index": 2, "source": "print(df.shape)", "execution_count": 3},
        {"index": 3, "source": "df = pd.DataFrame({'a': [1]})", "execution_count": 2},
    ]
    answer = json.loads((await _review(jp_fetch, {"cells": cells})).body)
    assert answer["cells"] == 3
    found = [(f["cell"], f["code"], f["related_cell"]) for f in answer["findings"]]
    assert found == [(2, "NB101", 3), (3, "NB103", 2)]
    assert answer["findings"][0]["line"] == 1 and answer["findings"][0]["fix"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "'cells' must be a list"),
        ({"cells": [{"index": -1, "source": ""}]}, "index must be an integer"),
        ({"cells": [{"index": True, "source": ""}]}, "index must be an integer"),
        ({"cells": [{"index": 0, "source": 3}]}, "source must be text"),
        ({"cells": [{"index": 0, "source": "", "execution_count": "1"}]}, "execution_count"),
        ({"cells": [{"index": 0, "source": "", "failed": "no"}]}, "failed must be"),
        ({"cells": ["x"]}, "cells[0] must be an object"),
        ({"cells": [{"index": 0, "source": ""}] * 5001}, "At most 5000 cells"),
    ],
)
async def test_bad_bodies_are_refused_clearly(jp_fetch: Any, body: Any, says: str) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await _review(jp_fetch, body)
    assert refused.value.code == 400
    error = json.loads(refused.value.response.body)
    assert error["code"] == "bad_frame"
    assert says in error["message"]
