"""How the notebook context reads in the prompt the model gets."""

from __future__ import annotations


def test_the_prompt_numbers_the_active_cell_from_1_and_fences_it_by_its_type() -> None:
    from rubberduck_jupyter.context.prompt import describe_context
    from rubberduck_jupyter.protocol import ChatContext

    markdown = describe_context(
        ChatContext(notebook_path="a.ipynb", cell_index=0, cell_type="markdown", active_cell="# T")
    )
    assert markdown is not None
    assert "Notebook: a.ipynb (active cell 1, markdown)" in markdown
    assert "```markdown\n# T\n```" in markdown
    code = describe_context(ChatContext(notebook_path="a.ipynb", cell_index=2, active_cell="x"))
    assert code is not None
    assert "(active cell 3)" in code and "```python\nx\n```" in code
