"""Stage `ask_example`: the digits pair named by ask.example as image folders (data/ask/), the
default input of the `ask` stage."""
from askshift.study import layout
from askshift.study.stage import run_stage, write_outputs


def main(cfg) -> None:
    from askshift.study import ask_example

    written = ask_example.example(cfg)
    write_outputs({layout.results("ask") / "example.json": written})
    print(f"ask_example: {written['shift']} ({written['kind']}): {written['n_reference']} reference and "
          f"{written['n_shifted']} shifted images in {layout.ASK_EXAMPLE}/")


if __name__ == "__main__":
    run_stage("ask_example", main)
