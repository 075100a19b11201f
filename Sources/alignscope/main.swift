print("alignscope: under construction")
