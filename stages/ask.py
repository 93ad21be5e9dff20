"""Stage `ask`: will pre-training make a model robust to the shift from ask.reference to
ask.shifted? The support split, ER when labelled, and the verdict (reports/ask.html)."""
from askshift.study import layout
from askshift.study.stage import run_stage, table, write_outputs


def main(cfg) -> None:
    from askshift.report import ask_page
    from askshift.study import ask_stage

    result, ratios = ask_stage.run(cfg)
    out = layout.results("ask")
    write_outputs({out / "ask.json": result, out / "ratios.csv": table(ratios, "%.6g"),
                   layout.metrics_file("ask"): ask_stage.headline(result),
                   layout.REPORTS / "ask.html": ask_page.render(result, ratios)})
    print(result["verdict"]["headline"])


if __name__ == "__main__":
    run_stage("ask", main)
