//! A domain command addressed to one aggregate cannot carry another aggregate's command.
mod stock {
    include!("../../compiler/tests/golden/stock.rs");
}

fn main() {
    let _ = stock::Command::Item {
        id: stock::Sku::from("sku-1"),
        command: stock::order::Command::RefuseLine(stock::order::commands::RefuseLine { item: stock::Sku::from("x") }),
    };
}
